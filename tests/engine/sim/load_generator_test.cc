// The load generator's statistics and behaviour against known inputs:
// percentiles, Poisson rates, stall and loss detection, error accounting,
// scenario validation.
#include "load_generator_test.h"

#include <QtTest>

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <future>

#include "support/test_http.h"
#include <cmath>

#include "common/io_pool.h"
#include "config/validate.h"
#include "sim/load_generator.h"
#include "sim/sim_server.h"
#include "engine.h"
#include "support/test_config.h"
#include "support/json.h"

using namespace spillway;
using namespace spillway::sim;
using namespace spillway::testing;

namespace {

struct Sim {
  explicit Sim(const std::function<void(v1::SimProfile&)>& edit) : io(1) {
    v1::SimProfile p;
    p.set_profile("instant");
    edit(p);
    (void)config::fillSimDefaults(p);
    server = std::make_unique<SimServer>(io, p, std::vector<std::string>{"m"}, "t");
    io.start();
    if (!server->listen("127.0.0.1", 0).ok()) qFatal("listen");
  }
  ~Sim() {
    server->stop();
    io.stop();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
  common::IoPool io;
  std::unique_ptr<SimServer> server;
};

v1::Scenario quick(const std::string& target, double rate, uint32_t concurrency, uint32_t ms, bool stream = false) {
  v1::Scenario s;
  s.set_target(target);
  auto* c = s.add_classes();
  c->set_model("m");
  c->set_stream(stream);
  auto* p = s.add_phases();
  p->set_duration_ms(ms);
  p->set_rate(rate);
  p->set_concurrency(concurrency);
  return s;
}

}  // namespace

void LoadGeneratorTest::histogramIsExactBelow128us() {
  LatencyHistogram h;
  for (uint64_t v : {0, 1, 5, 127}) h.record(v);
  QCOMPARE(h.percentile(0.25), uint64_t{0});
  QCOMPARE(h.percentile(0.5), uint64_t{1});
  QCOMPARE(h.percentile(0.75), uint64_t{5});
  QCOMPARE(h.percentile(1.0), uint64_t{127});
  QCOMPARE(h.min(), uint64_t{0});
  QCOMPARE(h.count(), uint64_t{4});
}

void LoadGeneratorTest::histogramPercentilesWithinOnePointSixPercent() {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.record(v);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double exact = q * 100000;
    double got = static_cast<double>(h.percentile(q));
    QVERIFY2(got >= exact && got <= exact * 1.016, qPrintable(QString("q=%1 got %2").arg(q).arg(got)));
  }
  QCOMPARE(h.max(), uint64_t{100000});
  QCOMPARE(h.percentile(1.0), uint64_t{100000});
  QVERIFY(std::abs(h.mean() - 50000.5) < 1e-6);
  // Every bucket's upper bound maps back to that bucket.
  for (size_t b = 0; b < 2496; ++b) QCOMPARE(LatencyHistogram::bucketOf(LatencyHistogram::upperBound(b)), b);
}

void LoadGeneratorTest::histogramMerges() {
  LatencyHistogram a, b;
  a.record(10);
  b.record(1000000);
  a.merge(b);
  QCOMPARE(a.count(), uint64_t{2});
  QCOMPARE(a.max(), uint64_t{1000000});
  QCOMPARE(a.percentile(0.5), uint64_t{10});
}

void LoadGeneratorTest::openLoopHitsTheTargetRate() {
  Sim sim([](auto&) {});
  auto r = runLoad(quick(sim.url(), 400, 0, 2000));
  QVERIFY(r.ok());
  // Arrivals are drawn on a virtual timeline from the scenario's seed, so
  // the count does not depend on how fast this machine runs: it is a
  // Poisson draw with mean 800 (the bounds are five standard deviations)
  // and the same draw every run.
  QVERIFY2(r->overall.sent > 650 && r->overall.sent < 950, qPrintable(QString::number(r->overall.sent)));
  QCOMPARE(r->overall.ok, r->overall.sent);
  QCOMPARE(r->overall.latency.count(), r->overall.sent);
  auto again = runLoad(quick(sim.url(), 400, 0, 2000));
  QVERIFY(again.ok());
  QCOMPARE(again->overall.sent, r->overall.sent);
}

void LoadGeneratorTest::closedLoopKeepsConcurrency() {
  Sim sim([](auto& p) {
    p.set_inter_token_ms(5);
    p.set_min_output_tokens(4);
    p.set_max_output_tokens(4);
  });
  auto r = runLoad(quick(sim.url(), 0, 8, 500));
  QVERIFY(r.ok());
  QCOMPARE(r->max_open_connections, uint64_t{8});
  QVERIFY(r->overall.ok > 8);
  QCOMPARE(r->overall.errors.size(), size_t{0});
}

void LoadGeneratorTest::detectsStalls() {
  // The simulator sends a frame every 20 ms; expecting 1 ms frames makes
  // every gap a stall (> 10 x 1 ms): the count must be exact.
  Sim sim([](auto& p) {
    p.set_inter_token_ms(20);
    p.set_min_output_tokens(5);
    p.set_max_output_tokens(5);
  });
  auto s = quick(sim.url(), 0, 2, 300, true);
  s.mutable_classes(0)->set_expected_itl_ms(1);
  auto r = runLoad(s);
  QVERIFY(r.ok());
  const auto& o = r->overall;
  QVERIFY(o.ok >= 2);
  // Per stream: role, 5 tokens, finish, usage = 8 frames, 7 gaps. The 4 gaps
  // between tokens are 20 ms by the simulator's clock, so at least 20 ms at
  // the client: always stalls. The other 3 are back to back at the server
  // but may stretch past 10 ms on a loaded machine: counted or not.
  QCOMPARE(o.frames, o.ok * 8);
  QVERIFY2(o.stalls >= o.ok * 4 && o.stalls <= o.ok * 7, qPrintable(QString("%1 stalls, %2 streams").arg(o.stalls).arg(o.ok)));
  QCOMPARE(o.streams_lost, uint64_t{0});
  // A stall threshold of 10 s: no gap of this run comes near it.
  auto relaxed = quick(sim.url(), 0, 2, 300, true);
  relaxed.mutable_classes(0)->set_expected_itl_ms(1000);
  auto r2 = runLoad(relaxed);
  QCOMPARE(r2->overall.stalls, uint64_t{0});
}

void LoadGeneratorTest::countsLostStreams() {
  Sim sim([](auto& p) {
    p.set_min_output_tokens(10);
    p.set_max_output_tokens(10);
    p.mutable_failures()->set_rate(1);
    p.mutable_failures()->set_kind(v1::RESET_MID_STREAM);
  });
  auto r = runLoad(quick(sim.url(), 50, 0, 400, true));
  QVERIFY(r.ok());
  QVERIFY(r->overall.sent > 0);
  QCOMPARE(r->overall.ok, uint64_t{0});
  QCOMPARE(r->overall.streams_lost, r->overall.sent);
  QCOMPARE(r->overall.errors.at("incomplete_stream"), r->overall.sent);
}

void LoadGeneratorTest::drivesTheResponsesApi() {
  Sim sim([](auto& p) {
    p.set_inter_token_ms(1);
    p.set_min_output_tokens(6);
    p.set_max_output_tokens(6);
  });
  auto s = quick(sim.url(), 0, 2, 300, true);
  s.mutable_classes(0)->set_endpoint("responses");
  auto r = runLoad(s);
  QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
  const auto& o = r->overall;
  QVERIFY(o.ok >= 2);
  QCOMPARE(o.streams_lost, uint64_t{0});
  QCOMPARE(o.errors.size(), size_t{0});
  QCOMPARE(o.frames, 6 * o.ok);  // the output deltas, not the typed events around them
  // Not streamed: the output tokens come from the response's usage.
  auto whole = quick(sim.url(), 0, 1, 200);
  whole.mutable_classes(0)->set_endpoint("responses");
  auto w = runLoad(whole);
  QVERIFY(w.ok());
  QVERIFY(w->overall.ok >= 1);
  QCOMPARE(w->overall.output_tokens, 6 * w->overall.ok);
}

void LoadGeneratorTest::countsErrorsByStatus() {
  Sim sim([](auto& p) {
    p.mutable_failures()->set_rate(1);
    p.mutable_failures()->set_kind(v1::HTTP_503);
  });
  auto r = runLoad(quick(sim.url(), 100, 0, 300));
  QVERIFY(r.ok());
  QVERIFY(r->overall.sent > 0);
  QCOMPARE(r->overall.errors.at("503"), r->overall.sent);
}

void LoadGeneratorTest::overflowIsCountedNotWaitedFor() {
  // One connection, a server that holds each request 200 ms, 100 arrivals/s:
  // most arrivals find no connection and must be counted, not delayed.
  Sim sim([](auto& p) { p.set_prefill_base_ms(200); });
  auto s = quick(sim.url(), 100, 0, 500);
  s.set_max_connections(1);
  auto r = runLoad(s);
  QVERIFY(r.ok());
  QVERIFY(r->overall.errors.count("client_overflow"));
  QVERIFY(r->overall.errors.at("client_overflow") > r->overall.ok);
  QCOMPARE(r->max_open_connections, uint64_t{1});
}

void LoadGeneratorTest::scenarioFilesAreValidated() {
  QTemporaryDir dir;
  QFile f(dir.filePath("s.yaml"));
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write("target: http://127.0.0.1:1\nclases: []\n");
  f.close();
  auto bad = loadScenarioFile(dir.filePath("s.yaml").toStdString());
  QVERIFY(!bad.ok());
  QVERIFY2(std::string(bad.status().message()).find("s.yaml:2:1: clases: unknown field \"clases\" (did you mean \"classes\"?)") !=
               std::string::npos,
           std::string(bad.status().message()).c_str());
  v1::Scenario empty;
  empty.set_target("htp://x");
  auto st = validateScenario(empty);
  QVERIFY(!st.ok());
  std::string msg(st.message());
  QVERIFY(msg.find("target: unsupported scheme") != std::string::npos);
  QVERIFY(msg.find("classes: at least one") != std::string::npos);
  QVERIFY(msg.find("phases: at least one") != std::string::npos);
  // The shipped scenarios load and validate.
  QDir scenarios(QString(SPILLWAY_SOURCE_DIR) + "/tests/bench/scenarios");
  const auto files = scenarios.entryList({"*.yaml"});
  QVERIFY(!files.isEmpty());
  for (const auto& name : files) {
    auto s = loadScenarioFile(scenarios.filePath(name).toStdString());
    QVERIFY2(s.ok(), qPrintable(name));
    QVERIFY2(validateScenario(*s).ok(), qPrintable(name));
  }
}

void LoadGeneratorTest::reportJsonIsComplete() {
  Sim sim([](auto&) {});
  auto r = runLoad(quick(sim.url(), 0, 2, 200, true));
  QVERIFY(r.ok());
  auto j = jsonObject(reportJson(*r));
  QCOMPARE(j["overall"].toObject()["sent"].toInteger(), static_cast<qint64>(r->overall.sent));
  for (const char* k : {"latency", "ttft", "frame_gap"}) {
    auto h = j["overall"].toObject()[k].toObject();
    for (const char* p : {"count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"}) QVERIFY2(h.contains(p), p);
  }
  QCOMPARE(j["phases"].toArray().size(), 1);
  QCOMPARE(j["classes"].toArray().size(), 1);
  QVERIFY(formatReport(*r).find("p99.9") != std::string::npos);
}

void LoadGeneratorTest::cancelStopsEarly() {
  Sim sim([](auto&) {});
  std::atomic<bool> cancel{false};
  QElapsedTimer timer;
  timer.start();
  auto run = std::async(std::launch::async, [&] { return runLoad(quick(sim.url(), 100, 0, 60000), {}, &cancel); });
  QVERIFY(waitFor([&] { return sim.server->counters().completed > 5; }));
  cancel = true;
  auto r = run.get();
  QVERIFY(r.ok());
  QVERIFY2(timer.elapsed() < 20000, "a 60 s run was cancelled");
  QVERIFY(r->overall.sent > 5);
  std::string errs;
  for (const auto& [k, v] : r->overall.errors) errs += k + "=" + std::to_string(v) + " ";
  QVERIFY2(r->overall.ok == r->overall.sent,
           (std::to_string(r->overall.ok) + " ok of " + std::to_string(r->overall.sent) + " " + errs).c_str());
}

void LoadGeneratorTest::repeatedQuestionsComeFromTheCache() {
  // Three deterministic questions, asked one after another: each reaches a
  // backend once, every repeat is a cache hit.
  auto e = Engine::start(configFromYaml(engineYaml(kTwoInstantSims, "cache: {scope: shared}\n")),
                         EngineOptions{"", "test", false});
  QVERIFY(e.ok());
  auto s = quick((*e)->url(), 0, 1, 400);
  s.mutable_classes(0)->set_deterministic(true);
  s.mutable_classes(0)->set_distinct_prompts(3);
  s.mutable_classes(0)->set_zipf_s(1.0);
  auto r = runLoad(s);
  QVERIFY(r.ok());
  QVERIFY(r->overall.ok > 10);
  const auto c = (*e)->cache();
  QVERIFY2(c.misses >= 1 && c.misses <= 3, qPrintable(QString::number(c.misses)));
  QCOMPARE(c.hits + c.misses, r->overall.ok);
  // An invalid Zipf exponent is refused with the field named.
  s.mutable_classes(0)->set_zipf_s(-1);
  auto bad = runLoad(s);
  QVERIFY(!bad.ok());
  QVERIFY(std::string(bad.status().message()).find("zipf_s") != std::string::npos);
}

QTEST_APPLESS_MAIN(LoadGeneratorTest)
