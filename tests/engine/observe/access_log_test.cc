#include "access_log_test.h"

#include <QTemporaryDir>
#include <QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "common/sha256.h"
#include "engine.h"
#include "metrics/registry.h"
#include "observe/access_log.h"
#include "support/json.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

// Every line of the `n` requests finished so far is written: a request's
// line is queued when it completes, which for a relayed answer is just
// after the client has it.
bool written(Engine& e, uint64_t n) {
  return waitFor([&] {
    e.flushAccessLog();
    return e.accessLogCounts().first >= n;
  });
}

std::vector<std::string> readLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

HttpResult chat(uint16_t port, const std::string& content, Headers headers = {}, const std::string& extra = "") {
  headers.push_back({"Content-Type", "application/json"});
  return httpRequest(port, "POST", "/v1/chat/completions",
                     R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":")" + content + "\"}]" + extra + "}",
                     headers);
}

const char* kSims = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant}
  - name: broken
    url: sim://broken
    models: [bad]
    sim: {profile: instant, failures: {rate: 1, kind: HTTP_500}}
)";

}  // namespace

void AccessLogTest::linesSayWhatHappened() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("access.log").toStdString();
  auto e = startFromYaml(engineYaml(kSims, "access_log: {path: \"" + path + "\"}\nlimits:\n  keys:\n    - {name: team-a, sha256: " +
                                       common::sha256Hex("sk-a") + ", limits: {requests_per_minute: 3}}\n"));
  const uint16_t port = e->port();
  const Headers key = {{"Authorization", "Bearer sk-a"}};
  auto miss = chat(port, "cached", key, R"(,"temperature":0)");
  auto hit = chat(port, "cached", key, R"(,"temperature":0)");
  auto plain = chat(port, "plain", key);
  auto shed = chat(port, "over the limit", key);  // the key's fourth request this minute
  auto failed = httpRequest(port, "POST", "/v1/chat/completions",
                            R"({"model":"bad","messages":[{"role":"user","content":"x"}]})", {{"Content-Type", "application/json"}});
  auto invalid = httpRequest(port, "POST", "/v1/chat/completions", R"({"model":"m"})", {{"Content-Type", "application/json"}});
  QCOMPARE(miss.status, 200);
  QCOMPARE(hit.status, 200);
  QCOMPARE(shed.status, 429);
  QCOMPARE(failed.status, 500);
  QCOMPARE(invalid.status, 400);
  QVERIFY(written(*e, 6));
  const auto lines = readLines(path);
  QCOMPARE(lines.size(), size_t{6});
  // Each line found by the trace id its client was told.
  std::map<std::string, QJsonObject> by_trace;
  std::map<std::string, std::string> text_by_trace;
  for (const auto& l : lines) {
    by_trace[str(jsonObject(l)[u"trace_id"])] = jsonObject(l);
    text_by_trace[str(jsonObject(l)[u"trace_id"])] = l;
  }
  std::vector<QJsonObject> rows;
  std::vector<std::string> texts;
  for (const HttpResult* r : {&miss, &hit, &plain, &shed, &failed, &invalid}) {
    const std::string trace = r->header("x-spillway-trace-id");
    QVERIFY2(by_trace.count(trace), trace.c_str());
    rows.push_back(by_trace[trace]);
    texts.push_back(text_by_trace[trace]);
  }
  QCOMPARE(str(rows[0][u"cache"]), "miss");
  QCOMPARE(str(rows[1][u"cache"]), "hit");
  QCOMPARE(str(rows[1][u"cache_tier"]), "memory");
  QVERIFY(rows[1][u"backend"].isNull());  // answered by the gateway
  QCOMPARE(str(rows[2][u"backend"]), "a");
  QCOMPARE(rows[2][u"attempts"].toInt(), 1);
  QVERIFY(rows[2][u"completion_tokens"].toInt() > 0);
  QCOMPARE(str(rows[3][u"drop_reason"]), "rate_limited");
  QCOMPARE(str(rows[3][u"error_code"]), "rate_limit_exceeded");
  QCOMPARE(rows[3][u"status"].toInt(), 429);
  QCOMPARE(rows[4][u"status"].toInt(), 500);
  QCOMPARE(str(rows[4][u"backend"]), "broken");
  QCOMPARE(str(rows[5][u"error_code"]), "missing_required_parameter");
  for (int i = 0; i < 4; ++i) {
    QCOMPARE(str(rows[i][u"tenant"]), "team-a");  // the key's name, never the key
    QVERIFY(texts[i].find("sk-a") == std::string::npos);
    QCOMPARE(str(rows[i][u"class"]), "standard");
  }
  QVERIFY(rows[4][u"tenant"].isNull());
  for (const auto& r : rows) {
    QCOMPARE(str(r[u"client"]), "127.0.0.1");
    QCOMPARE(str(r[u"route"]), "chat_completions");
    QCOMPARE(str(r[u"method"]), "POST");
    QVERIFY(r[u"total_ms"].toDouble() >= 0);
    QCOMPARE(str(r[u"trace_id"]).size(), size_t{32});
  }
  QVERIFY(str(rows[0][u"time"]).ends_with("Z"));
  QCOMPARE(e->accessLogCounts().first, uint64_t{6});
}

void AccessLogTest::usagePerTenantMatchesWhatClientsCounted() {
  auto e = startFromYaml(engineYaml(kSims, "limits:\n  keys:\n    - {name: team-a, sha256: " + common::sha256Hex("sk-a") +
                                       ", limits: {requests_per_minute: 4}}\n    - {name: team-b, sha256: " +
                                       common::sha256Hex("sk-b") + "}\n"));
  const uint16_t port = e->port();
  std::map<std::string, int64_t> completion, requests, shed, hits;
  auto send = [&](const std::string& tenant, const Headers& key, const std::string& content, const std::string& extra) {
    auto r = chat(port, content, key, extra);
    ++requests[tenant];
    if (r.status == 429) ++shed[tenant];
    if (r.header("x-spillway-cache") == "hit") ++hits[tenant];
    // Tokens a backend generated: an answer from the cache cost none.
    if (r.status == 200 && r.header("x-spillway-cache") != "hit") {
      completion[tenant] += jsonObject(r.body)[u"usage"][u"completion_tokens"].toInt();
    }
  };
  for (int i = 0; i < 6; ++i) send("team-a", {{"Authorization", "Bearer sk-a"}}, "a " + std::to_string(i % 2), R"(,"temperature":0)");
  for (int i = 0; i < 3; ++i) send("team-b", {{"Authorization", "Bearer sk-b"}}, "b " + std::to_string(i), "");
  for (int i = 0; i < 2; ++i) send("other", {}, "open " + std::to_string(i), "");
  QCOMPARE(shed["team-a"], 2);  // four a minute
  QVERIFY(hits["team-a"] >= 1);
  // The counters are bumped when each request completes: just after its client has it.
  auto metric = [&](const std::string& series) -> int64_t {
    const std::string text = e->metricsText();
    const size_t at = text.find(series + " ");
    return at == std::string::npos ? 0 : std::stoll(text.substr(at + series.size() + 1));
  };
  for (const std::string t : {"team-a", "team-b", "other"}) {
    const std::string labels = "{tenant=\"" + t + "\",model=\"m\"";
    QVERIFY2(waitFor([&] { return metric("spillway_tenant_requests_total" + labels + "}") == requests[t]; }), t.c_str());
    QCOMPARE(metric("spillway_tenant_tokens_total" + labels + ",kind=\"completion\"}"), completion[t]);
    QCOMPARE(metric("spillway_tenant_shed_total" + labels + "}"), shed[t]);
    QCOMPARE(metric("spillway_tenant_cache_hits_total" + labels + "}"), hits[t]);
  }
  QVERIFY(e->metricsText().find("tenant=\"127.0.0.1\"") == std::string::npos);  // addresses are never labels
}

void AccessLogTest::usageHistoryAndEventsOutliveARestart() {
  QTemporaryDir dir;
  const v1::Config config = configFromYaml(engineYaml(
      kSims, "limits:\n  keys:\n    - {name: team-a, sha256: " + common::sha256Hex("sk-a") +
                 ", limits: {requests_per_minute: 2}}\n"));
  const Headers key = {{"Authorization", "Bearer sk-a"}};
  std::vector<std::string> traces;  // of the requests that went wrong, in order
  {
    auto started = Engine::start(config, EngineOptions{dir.path().toStdString(), "test", true});
    QVERIFY(started.ok());
    Engine& e = **started;
    for (int i = 0; i < 4; ++i) {  // two answered, two over the key's limit
      auto r = chat(e.port(), "q " + std::to_string(i), key);
      if (r.status == 429) traces.push_back(r.header("x-spillway-trace-id"));
    }
    QCOMPARE(traces.size(), size_t{2});
    auto failed = httpRequest(e.port(), "POST", "/v1/chat/completions",
                              R"({"model":"bad","messages":[{"role":"user","content":"x"}]})",
                              {{"Content-Type", "application/json"}});
    QCOMPARE(failed.status, 500);
    traces.push_back(failed.header("x-spillway-trace-id"));
    auto unknown = httpRequest(e.port(), "POST", "/v1/chat/completions",
                               R"({"model":"nope","messages":[{"role":"user","content":"x"}]})",
                               {{"Content-Type", "application/json"}});
    QCOMPARE(unknown.status, 404);
    traces.push_back(unknown.header("x-spillway-trace-id"));
    // The sampler writes the history once a second.
    auto find = [&](const std::string& tenant, const std::string& model) {
      for (const auto& r : e.usage({})) {
        if (r.tenant == tenant && r.model == model) return r.counts;
      }
      return store::UsageCounts{};
    };
    QVERIFY(waitFor([&] { return find("team-a", "m").requests == 4 && find("other", "-").requests == 1; }));
    QCOMPARE(find("team-a", "m").shed, int64_t{2});
    QVERIFY(find("team-a", "m").completion_tokens > 0);
    QCOMPARE(find("other", "bad").requests, int64_t{1});
    // A client's made-up model never becomes a row of its own.
    for (const auto& r : e.usage({})) QVERIFY(r.model != "nope");
    // The event ring: the four that went wrong, newest first, by trace id.
    const auto events = e.requestEvents(10);
    QCOMPARE(events.size(), size_t{4});
    for (size_t i = 0; i < 4; ++i) QCOMPARE(events[i].trace_id, traces[3 - i]);
    QCOMPARE(events[3].reason, std::string("rate_limited"));
    QCOMPARE(events[3].tenant, std::string("team-a"));
    QCOMPARE(events[1].status, 500);
    QCOMPARE(events[1].backend, std::string("broken"));
    QCOMPARE(events[1].tenant, std::string("127.0.0.1"));  // open access: the client's address
    QCOMPARE(events[0].status, 404);
    QCOMPARE(events[0].reason, std::string("model_not_found"));
    e.stop();
  }
  // The history is in the data directory's SQLite file.
  auto again = Engine::start(config, EngineOptions{dir.path().toStdString(), "test", true});
  QVERIFY(again.ok());
  const auto rows = (*again)->usage({0, INT64_MAX, "team-a", ""});
  QCOMPARE(rows.size(), size_t{1});
  QCOMPARE(rows[0].counts.requests, int64_t{4});
  QCOMPARE(rows[0].counts.shed, int64_t{2});
  QVERIFY((*again)->requestEvents(10).empty());  // the ring is this process's
}

void AccessLogTest::textFormatAndSampling() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("access.log").toStdString();
  // Errors only: successes are not logged, errors always are.
  auto e = startFromYaml(engineYaml(kSims, "access_log: {path: \"" + path + "\", format: text, errors_only: true}\n"));
  const uint16_t port = e->port();
  for (int i = 0; i < 5; ++i) QCOMPARE(chat(port, "fine " + std::to_string(i)).status, 200);
  auto failed = httpRequest(port, "POST", "/v1/chat/completions",
                            R"({"model":"bad","messages":[{"role":"user","content":"x y"}]})", {{"Content-Type", "application/json"}});
  QCOMPARE(failed.status, 500);
  QVERIFY(written(*e, 1));
  const auto lines = readLines(path);
  QCOMPARE(lines.size(), size_t{1});
  QVERIFY2(lines[0].find(" status=500 ") != std::string::npos, lines[0].c_str());
  QVERIFY(lines[0].find(" route=chat_completions ") != std::string::npos);
  QVERIFY(lines[0].find(" model=bad ") != std::string::npos);
  QVERIFY(lines[0].find("trace_id=" + failed.header("x-spillway-trace-id")) != std::string::npos);
}

void AccessLogTest::aFullQueueDropsAndNeverWaits() {
  // The file is a pipe nobody reads yet: once its buffer is full the
  // writer blocks, the queue (4 lines) fills, and the rest is dropped —
  // while push() keeps returning at once.
  int fds[2];
  QCOMPARE(pipe(fds), 0);
  metrics::Registry registry;
  auto log = std::make_shared<observe::AccessLog>(registry);
  log->configure("/proc/self/fd/" + std::to_string(fds[1]), 4);
  const std::string line(1024, 'x');
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) accepted += log->push(line);
  QVERIFY(accepted < 1000);
  // Read the pipe so the writer finishes, then count.
  std::thread reader([&] {
    char buf[65536];
    while (read(fds[0], buf, sizeof buf) > 0) {
    }
  });
  log->flush();
  QCOMPARE(log->written() + log->dropped(), uint64_t{1000});
  QCOMPARE(log->written(), static_cast<uint64_t>(accepted));
  QVERIFY(log->dropped() > 0);
  log.reset();  // closes the write end it opened
  close(fds[1]);
  reader.join();
  close(fds[0]);
}

void AccessLogTest::reopenFollowsLogrotate() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("access.log").toStdString();
  auto e = startFromYaml(engineYaml(kSims, "access_log: {path: \"" + path + "\"}\n"));
  QCOMPARE(chat(e->port(), "before").status, 200);
  QVERIFY(written(*e, 1));
  // logrotate: move the file, then signal (spillwayd's SIGUSR1 calls this).
  QCOMPARE(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  QCOMPARE(chat(e->port(), "still into the moved file").status, 200);
  QVERIFY(written(*e, 2));
  e->reopenLogs();
  QCOMPARE(chat(e->port(), "after").status, 200);
  QVERIFY(written(*e, 3));
  QCOMPARE(readLines(path + ".1").size(), size_t{2});
  QCOMPARE(readLines(path).size(), size_t{1});
}

void AccessLogTest::traceContextReachesTheUpstream() {
  // A stub upstream that records the request head and answers a completion.
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
  const uint16_t upstream_port = acceptor.local_endpoint().port();
  std::vector<std::string> heads;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          net::ip::tcp::socket s = co_await acceptor.async_accept(net::use_awaitable);
          net::streambuf buf;
          const size_t n = co_await net::async_read_until(s, buf, std::string_view("\r\n\r\n"), net::use_awaitable);
          heads.emplace_back(static_cast<const char*>(buf.data().data()), n);
          const std::string body = R"({"id":"x","object":"chat.completion","choices":[],"usage":{"completion_tokens":0}})";
          const std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                     "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
          co_await net::async_write(s, net::buffer(answer), net::use_awaitable);
        }
      },
      net::detached);
  std::thread upstream([&] { io.run_for(std::chrono::seconds(10)); });
  auto e = startFromYaml(engineYaml("  - name: stub\n    url: http://127.0.0.1:" + std::to_string(upstream_port) +
                            "\n    models: [m]\n    health_check: {path: none}\n"));
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto continued = chat(e->port(), "traced", {{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"},
                                              {"tracestate", "vendor=abc"}});
  auto started = chat(e->port(), "untraced", {{"traceparent", "garbage"}});
  upstream.join();
  QCOMPARE(continued.status, 200);
  QCOMPARE(continued.header("x-spillway-trace-id"), trace);
  QCOMPARE(heads.size(), size_t{2});
  // The same trace, the gateway's own span as the parent, tracestate as sent.
  const auto tp = heads[0].find("traceparent: 00-" + trace + "-");
  QVERIFY2(tp != std::string::npos, heads[0].c_str());
  const std::string span = heads[0].substr(tp + 16 + 33, 16);
  QVERIFY(span != "00f067aa0ba902b7" && span.find_first_not_of("0123456789abcdef") == std::string::npos);
  QVERIFY(heads[0].find("tracestate: vendor=abc\r\n") != std::string::npos);
  // An invalid traceparent starts a new trace, told to the client and the upstream.
  const std::string fresh = started.header("x-spillway-trace-id");
  QCOMPARE(fresh.size(), size_t{32});
  QVERIFY(fresh != trace);
  QVERIFY(heads[1].find("traceparent: 00-" + fresh + "-") != std::string::npos);
  QVERIFY(heads[1].find("tracestate") == std::string::npos);
}

QTEST_APPLESS_MAIN(AccessLogTest)
