// The simulated inference server: timing model, slots and queue, 503 when
// saturated, usage counts, determinism and fault injection — over real
// loopback HTTP.
#include "sim_server_test.h"

#include <QtTest>

#include <QRegularExpression>

#include <algorithm>
#include <future>
#include <thread>

#include "common/io_pool.h"
#include "config/validate.h"
#include "openai/openai.h"
#include "sim/sim_server.h"
#include "support/json.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

v1::SimProfile profile(const std::string& name, const std::function<void(v1::SimProfile&)>& edit = {}) {
  v1::SimProfile p;
  p.set_profile(name);
  if (edit) edit(p);
  auto st = config::fillSimDefaults(p);
  if (!st.ok()) qFatal("bad profile");
  return p;
}

struct Sim {
  explicit Sim(v1::SimProfile p) : io(1), server(io, std::move(p), {"sim-a", "sim-b"}, "t") {
    io.start();
    auto st = server.listen("127.0.0.1", 0);
    if (!st.ok()) qFatal("listen failed: %s", std::string(st.message()).c_str());
  }
  ~Sim() {
    server.stop();
    io.stop();
  }
  uint16_t port() const { return server.port(); }
  common::IoPool io;
  sim::SimServer server;
};

const std::string kChat = R"({"model":"sim-a","messages":[{"role":"user","content":"Tell me about spillways"}]})";

std::string chat(const std::string& extra, const std::string& content = "Tell me about spillways") {
  return R"({"model":"sim-a",)" + extra + R"("messages":[{"role":"user","content":")" + content + R"("}]})";
}


}  // namespace

void SimServerTest::usageMatchesGeneratedText() {
  Sim sim(profile("instant", [](auto& p) {
    p.set_min_output_tokens(20);
    p.set_max_output_tokens(40);
  }));
  auto r = postJson(sim.port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 200);
  auto o = jsonObject(r.body);
  QCOMPARE(str(o["object"]), "chat.completion");
  QCOMPARE(str(o["model"]), "sim-a");
  auto choice = o["choices"].toArray()[0].toObject();
  std::string content = str(choice["message"].toObject()["content"]);
  auto usage = o["usage"].toObject();
  const int completion = usage["completion_tokens"].toInt();
  // Counted here, independently of the simulator's tokenizer, by its
  // documented rule: each whitespace-separated word is ceil(bytes / 4) tokens.
  int counted = 0;
  for (const QString& word : QString::fromStdString(content).split(QRegularExpression("\\s+"), Qt::SkipEmptyParts)) {
    counted += static_cast<int>((word.toUtf8().size() + 3) / 4);
  }
  QCOMPARE(completion, counted);
  QVERIFY(completion >= 20 && completion <= 40);
  // "Tell me about spillways": 1 + 1 + 2 + 3 words' tokens, 3 for the
  // message and 3 for the reply priming.
  QCOMPARE(usage["prompt_tokens"].toInt(), 1 + 1 + 2 + 3 + 3 + 3);
  QCOMPARE(usage["total_tokens"].toInt(), usage["prompt_tokens"].toInt() + completion);
  QCOMPARE(str(choice["finish_reason"]), "stop");
}

void SimServerTest::textIsDeterministicPerSeedAndPrompt() {
  Sim a(profile("instant"));
  Sim b(profile("instant", [](auto& p) { p.set_seed(7); }));
  auto content = [](uint16_t port, const std::string& prompt) {
    auto r = postJson(port, "/v1/chat/completions", chat("", prompt));
    return str(jsonObject(r.body)["choices"].toArray()[0].toObject()["message"].toObject()["content"]);
  };
  QCOMPARE(content(a.port(), "x"), content(a.port(), "x"));
  QVERIFY(content(a.port(), "x") != content(b.port(), "x"));
  QVERIFY(content(a.port(), "x") != content(a.port(), "y"));
}

void SimServerTest::maxTokensCapsTheAnswer() {
  Sim sim(profile("instant", [](auto& p) { p.set_min_output_tokens(50); p.set_max_output_tokens(50); }));
  auto r = postJson(sim.port(), "/v1/completions", R"({"model":"m","prompt":"p","max_tokens":3})");
  QCOMPARE(r.status, 200);
  auto o = jsonObject(r.body);
  QCOMPARE(str(o["object"]), "text_completion");
  QCOMPARE(o["usage"].toObject()["completion_tokens"].toInt(), 3);
  QCOMPARE(str(o["choices"].toArray()[0].toObject()["finish_reason"]), "length");
}

void SimServerTest::streamFollowsTheTimingModel() {
  Sim sim(profile("instant", [](auto& p) {
    p.set_prefill_base_ms(100);
    p.set_inter_token_ms(30);
    p.set_min_output_tokens(10);
    p.set_max_output_tokens(10);
  }));
  auto r = streamRequest(sim.port(), "/v1/chat/completions",
                         chat(R"("stream":true,"stream_options":{"include_usage":true},)"));
  QCOMPARE(r.status, 200);
  QVERIFY(r.complete);
  QVERIFY(r.sawDone());
  QCOMPARE(r.headers["content-type"], "text/event-stream");
  // role chunk, 10 tokens, finish chunk, usage chunk, [DONE]
  QCOMPARE(r.events.size(), size_t{14});
  auto first = jsonObject(r.events[0].data);
  QCOMPARE(str(first["choices"].toArray()[0].toObject()["delta"].toObject()["role"]), "assistant");
  // Only lower bounds, measured at the client: a token cannot arrive before
  // the simulator sends it, however loaded the machine (a stalled client
  // reads late, never early). Gaps between arrivals are not checked: a
  // client thread that stalls and then reads a burst sees gaps near 0.
  const double ttft = r.events[1].at_ms;
  const double last_token = r.events[10].at_ms;
  QVERIFY2(ttft >= 100 - 2, qPrintable(QString("ttft %1 ms").arg(ttft)));  // prefill_base_ms (2 ms clock slack)
  QVERIFY2(last_token >= 100 + 9 * 30 - 2, qPrintable(QString("tenth token at %1 ms").arg(last_token)));
  auto finish = jsonObject(r.events[11].data);
  QCOMPARE(str(finish["choices"].toArray()[0].toObject()["finish_reason"]), "stop");
  auto usage = jsonObject(r.events[12].data);
  QCOMPARE(usage["choices"].toArray().size(), 0);
  QCOMPARE(usage["usage"].toObject()["completion_tokens"].toInt(), 10);
}

void SimServerTest::prefillGrowsWithThePrompt() {
  Sim sim(profile("instant", [](auto& p) {
    p.set_prefill_per_token_us(2000);  // 2 ms per prompt token
    p.set_min_output_tokens(1);
    p.set_max_output_tokens(1);
  }));
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "word ";
  auto shortr = streamRequest(sim.port(), "/v1/completions", R"({"model":"m","stream":true,"prompt":"hi"})");
  auto longr = streamRequest(sim.port(), "/v1/completions",
                             R"({"model":"m","stream":true,"prompt":")" + long_prompt + R"("})");
  QVERIFY(shortr.sawDone() && longr.sawDone());
  // 100 prompt tokens x 2 ms: the long prompt's first byte cannot come
  // before 200 ms (a lower bound: load only delays). No comparison with the
  // short one's time: a stall while reading it would shrink the difference.
  QVERIFY2(longr.events[0].at_ms >= 200 - 2, qPrintable(QString::number(longr.events[0].at_ms)));
}

void SimServerTest::answers503WhenSlotsAndQueueAreFull() {
  // A stream long enough to outlast any scheduling delay holds the one
  // slot; the test ends it by closing its connection (the simulator frees
  // the slot when a write fails), so no time window decides the outcome.
  Sim sim(profile("instant", [](auto& p) {
    p.set_max_num_seqs(1);
    p.set_max_waiting(1);
    p.set_inter_token_ms(20);
    p.set_min_output_tokens(100000);
    p.set_max_output_tokens(100000);
  }));
  HeldRequest holder(sim.port(), "/v1/chat/completions", chat(R"("stream":true,)"));
  QVERIFY(holder.sent());
  QVERIFY(waitFor([&] { return sim.server.counters().running == 1; }));
  // Two tokens: the simulator's natural answer here is 100,000.
  const std::string short_chat = chat(R"("max_tokens":2,)");
  auto waiting = std::async(std::launch::async, [&] {
    return postJson(sim.port(), "/v1/chat/completions", short_chat, std::chrono::seconds(60));
  });
  QVERIFY(waitFor([&] { return sim.server.counters().waiting == 1; }));

  auto busy = postJson(sim.port(), "/v1/chat/completions", kChat);
  QCOMPARE(busy.status, 503);
  QCOMPARE(str(jsonObject(busy.body)["error"].toObject()["code"]), "server_busy");
  QCOMPARE(busy.header("retry-after"), "1");

  holder.close();  // the stream's next write fails: its slot goes to the waiting request
  QCOMPARE(waiting.get().status, 200);
  // The simulator counts after it answers: wait for the counters to settle.
  QVERIFY(waitFor([&] {
    auto c = sim.server.counters();
    return c.running == 0 && c.waiting == 0 && c.completed == 1;  // the cut stream never completed
  }));
  QCOMPARE(sim.server.counters().rejected_busy, 1u);
}

void SimServerTest::injectsFailures_data() {
  QTest::addColumn<int>("kind");
  QTest::addColumn<int>("status");
  QTest::addColumn<QString>("code");
  QTest::newRow("500") << int(v1::HTTP_500) << 500 << "internal_error";
  QTest::newRow("503") << int(v1::HTTP_503) << 503 << "server_busy";
  QTest::newRow("429") << int(v1::HTTP_429) << 429 << "rate_limit_exceeded";
}

void SimServerTest::injectsFailures() {
  QFETCH(int, kind);
  QFETCH(int, status);
  QFETCH(QString, code);
  Sim sim(profile("instant", [&](auto& p) {
    p.mutable_failures()->set_rate(1);
    p.mutable_failures()->set_kind(static_cast<v1::FailureKind>(kind));
    p.mutable_failures()->set_retry_after_seconds(7);
  }));
  auto r = postJson(sim.port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, status);
  QCOMPARE(QString::fromStdString(str(jsonObject(r.body)["error"].toObject()["code"])), code);
  if (status == 429) QCOMPARE(r.header("retry-after"), "7");
  QCOMPARE(sim.server.counters().injected_failures, 1u);
}

void SimServerTest::resetMidStreamCutsTheConnection() {
  Sim sim(profile("instant", [](auto& p) {
    p.set_min_output_tokens(10);
    p.set_max_output_tokens(10);
    p.mutable_failures()->set_rate(1);
    p.mutable_failures()->set_kind(v1::RESET_MID_STREAM);
  }));
  auto r = streamRequest(sim.port(), "/v1/chat/completions", chat(R"("stream":true,)"));
  QCOMPARE(r.status, 200);
  QVERIFY(!r.complete);
  QVERIFY(!r.sawDone());
  QVERIFY(r.events.size() >= 2);  // the role chunk and some tokens made it
}

void SimServerTest::adminEndpoints() {
  Sim sim(profile("default"));
  auto models = httpRequest(sim.port(), "GET", "/v1/models");
  QCOMPARE(models.status, 200);
  auto data = jsonObject(models.body)["data"].toArray();
  QCOMPARE(data.size(), 2);
  QCOMPARE(str(data[1].toObject()["id"]), "sim-b");
  QCOMPARE(httpRequest(sim.port(), "GET", "/healthz").status, 200);
  auto metrics = httpRequest(sim.port(), "GET", "/metrics");
  QCOMPARE(metrics.status, 200);
  QVERIFY(metrics.body.find("spillway_sim_slots 16\n") != std::string::npos);
  QVERIFY(metrics.body.find("spillway_sim_running_sequences 0\n") != std::string::npos);
  auto missing = httpRequest(sim.port(), "GET", "/v2/nothing");
  QCOMPARE(missing.status, 404);
  QCOMPARE(str(jsonObject(missing.body)["error"].toObject()["code"]), "unknown_url");
  auto bad = postJson(sim.port(), "/v1/chat/completions", "{");
  QCOMPARE(bad.status, 400);
}

QTEST_APPLESS_MAIN(SimServerTest)
