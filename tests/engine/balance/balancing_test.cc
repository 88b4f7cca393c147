#include "balancing_test.h"

#include <QtTest>

#include <map>

#include "balance/balancer.h"
#include "engine.h"
#include "support/test_config.h"
#include "support/test_http.h"
#include "upstream/backend.h"
#include "upstream/load_scraper.h"
#include "sim/sim_server.h"

#include <future>

using namespace spillway;
using namespace spillway::testing;

namespace {

upstream::BackendPtr makeBackend(const std::string& name, uint32_t weight, uint32_t max_concurrency = 0) {
  v1::Backend c;
  c.set_name(name);
  c.set_weight(weight);
  c.set_max_concurrency(max_concurrency);
  return std::make_shared<upstream::Backend>(0, c, common::Url{}, "");
}

// Picks `n` times (releasing each slot) and counts the winners by name.
std::map<std::string, int> spread(balance::Balancer& lb, const std::vector<upstream::BackendPtr>& pool, int n) {
  std::map<std::string, int> out;
  for (int i = 0; i < n; ++i) {
    auto r = lb.pick(pool);
    if (r.outcome != balance::PickOutcome::kPicked) {
      out["<none>"]++;
      continue;
    }
    out[r.backend->name()]++;
    r.backend->release();
  }
  return out;
}

balance::BalancerPtr roundRobin() { return std::move(*balance::makeBalancer("round_robin")); }

const std::string kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";

}  // namespace

void BalancingTest::equalWeightsAlternate() {
  auto lb = roundRobin();
  std::vector<upstream::BackendPtr> pool = {makeBackend("a", 1), makeBackend("b", 1)};
  std::string seq;
  for (int i = 0; i < 6; ++i) {
    auto r = lb->pick(pool);
    QCOMPARE(r.outcome, balance::PickOutcome::kPicked);
    seq += r.backend->name();
    r.backend->release();
  }
  QCOMPARE(seq, std::string("ababab"));
}

void BalancingTest::weightsSplitTrafficProportionally() {
  auto lb = roundRobin();
  std::vector<upstream::BackendPtr> pool = {makeBackend("a", 3), makeBackend("b", 1), makeBackend("c", 4)};
  auto got = spread(*lb, pool, 800);
  QCOMPARE(got["a"], 300);
  QCOMPARE(got["b"], 100);
  QCOMPARE(got["c"], 400);
}

void BalancingTest::zeroWeightTakesABackendOutOfRotation() {
  auto lb = roundRobin();
  std::vector<upstream::BackendPtr> pool = {makeBackend("a", 1), makeBackend("b", 1)};
  pool[0]->setWeightOverride(0);
  auto got = spread(*lb, pool, 10);
  QCOMPARE(got["b"], 10);
  QCOMPARE(got.count("a"), size_t(0));
  pool[1]->setWeightOverride(0);
  QCOMPARE(lb->pick(pool).outcome, balance::PickOutcome::kNoHealthyBackend);
}

void BalancingTest::busyBackendFallsThroughToTheNext() {
  auto lb = roundRobin();
  std::vector<upstream::BackendPtr> pool = {makeBackend("a", 5, 1), makeBackend("b", 1, 1)};
  auto first = lb->pick(pool);  // slot 0: a
  QCOMPARE(first.backend->name(), std::string("a"));
  auto second = lb->pick(pool);  // slot 1 is a's too, but a is full: b
  QCOMPARE(second.outcome, balance::PickOutcome::kPicked);
  QCOMPARE(second.backend->name(), std::string("b"));
  QCOMPARE(lb->pick(pool).outcome, balance::PickOutcome::kAllBusy);
  first.backend->release();
  second.backend->release();
}

void BalancingTest::ejectionEndsWithASlowStart() {
  auto b = makeBackend("a", 100);
  const int64_t t0 = 1'000'000;
  b->eject(t0, t0 + 5'000, 10'000);
  QVERIFY(b->ejected());
  QVERIFY(!b->available());
  QCOMPARE(b->ejectedUntilMs(), t0 + 5'000);
  b->tick(t0 + 4'999);
  QVERIFY(b->ejected());
  b->tick(t0 + 5'000);  // due: back, at a tenth of the weight
  QVERIFY(!b->ejected());
  QVERIFY(b->available());
  QVERIFY(b->coolingDown());
  QCOMPARE(b->weight(), 10u);
  b->tick(t0 + 10'000);  // half way through the ramp: 0.1 + 0.9 * 0.5
  QCOMPARE(b->weight(), 55u);
  b->tick(t0 + 15'000);
  QVERIFY(!b->coolingDown());
  QCOMPARE(b->weight(), 100u);
}

void BalancingTest::readmitEndsAnEjectionAtOnce() {
  auto b = makeBackend("a", 10);
  b->eject(0, 60'000, 1'000);
  QVERIFY(!b->available());
  b->eject(100, 100, 1'000);  // readmit: until <= now
  QVERIFY(b->available());
  QVERIFY(b->coolingDown());
  QCOMPARE(b->weight(), 1u);
  b->tick(1'100);
  QCOMPARE(b->weight(), 10u);
  b->eject(2'000, 2'000, 1'000);  // readmitting a backend that is in changes nothing
  QVERIFY(!b->coolingDown());
  QCOMPARE(b->weight(), 10u);
}

void BalancingTest::overrideReplacesTheConfiguredWeight() {
  auto b = makeBackend("a", 2);
  QCOMPARE(b->weight(), 2u);
  b->setWeightOverride(7);
  QCOMPARE(b->weightOverride(), 7);
  QCOMPARE(b->weight(), 7u);
  QCOMPARE(b->configuredWeight(), 2u);
  b->setWeightOverride(-1);
  QCOMPARE(b->weightOverride(), -1);
  QCOMPARE(b->weight(), 2u);
}

void BalancingTest::outcomesFeedTheEwmaAndFailureCounts() {
  auto b = makeBackend("a", 1);
  b->recordOutcome(false, 1.0);
  QCOMPARE(b->ewmaLatencySeconds(), 1.0);  // the first sample seeds it
  b->recordOutcome(true, 2.0);
  QCOMPARE(b->ewmaLatencySeconds(), 1.1);
  QCOMPARE(b->requests(), uint64_t(2));
  QCOMPARE(b->failures(), uint64_t(1));
  QCOMPARE(b->lastError().first, int64_t(0));
  b->noteError(42, "boom");
  QCOMPARE(b->lastError().first, int64_t(42));
  QCOMPARE(b->lastError().second, std::string("boom"));
}

void BalancingTest::engineEjectAndWeightSteerLiveTraffic() {
  auto started = Engine::start(configFromYaml(engineYaml(kTwoInstantSims)), {.actor = "test"});
  QVERIFY2(started.ok(), std::string(started.status().message()).c_str());
  auto& engine = **started;
  // Counts answers by backend; failed requests count under "<status>".
  auto count = [&](int n) {
    std::map<std::string, int> by;
    for (int i = 0; i < n; ++i) {
      auto r = postJson(engine.port(), "/v1/chat/completions", kChat);
      by[r.status == 200 ? r.header("x-spillway-backend") : std::to_string(r.status)]++;
    }
    return by;
  };
  QVERIFY(engine.ejectBackend("a", std::chrono::minutes(1), "alice").ok());
  auto b = engine.backends();
  QVERIFY(b[0].ejected);
  QVERIFY(b[0].ejected_until_ms > 0);
  QCOMPARE(b[0].weight, 0u);
  QCOMPARE(b[0].pools, std::vector<std::string>{"m"});
  QCOMPARE(b[0].state, "ejected");
  // Prometheus sees it too: one state series set per backend, and the weight.
  const std::string metrics = engine.metricsText();
  for (const char* line : {"spillway_backend_state{backend=\"a\",state=\"ejected\"} 1",
                           "spillway_backend_state{backend=\"a\",state=\"up\"} 0",
                           "spillway_backend_state{backend=\"b\",state=\"up\"} 1",
                           "spillway_backend_weight{backend=\"a\"} 0", "spillway_backend_weight{backend=\"b\"} 1"}) {
    QVERIFY2(metrics.find(line) != std::string::npos, line);
  }
  QCOMPARE(count(6)["b"], 6);

  QVERIFY(engine.ejectBackend("a", std::chrono::milliseconds(0), "alice").ok());  // readmit
  QVERIFY(engine.setBackendWeight("a", 3, "alice").ok());
  b = engine.backends();
  QVERIFY(!b[0].ejected);
  QVERIFY(b[0].cooling_down);
  QCOMPARE(b[0].weight_override, 3);
  QCOMPARE(b[0].configured_weight, 1u);
  QVERIFY(engine.setBackendWeight("a", std::nullopt, "alice").ok());
  QCOMPARE(engine.backends()[0].weight_override, -1);
  QVERIFY(engine.setBackendWeight("b", 0, "alice").ok());
  QCOMPARE(count(4)["a"], 4);

  // A request is counted just after its answer is written: wait for the last.
  QVERIFY(waitFor([&] { return engine.backends()[0].requests == 4; }, std::chrono::seconds(10)));
  b = engine.backends();
  QCOMPARE(b[1].requests, uint64_t(6));
  QCOMPARE(b[1].failures, uint64_t(0));
  QVERIFY(b[1].ewma_latency_seconds > 0);

  std::vector<std::string> actions;
  for (const auto& e : engine.audit({.actor = "alice"})) actions.push_back(e.action + " " + e.target + " " + e.detail);
  std::sort(actions.begin(), actions.end());
  QCOMPARE(actions, (std::vector<std::string>{"backend.eject a for 60 s", "backend.readmit a ",
                                              "backend.weight a configured weight", "backend.weight a weight 3",
                                              "backend.weight b weight 0"}));
}

void BalancingTest::engineReportsUpstreamErrorsPerBackend() {
  // One simulator that fails every request with a 500.
  const std::string backends = R"(  - name: bad
    url: sim://bad
    models: [m]
    sim: {profile: instant, failures: {rate: 1, kind: http_500}}
)";
  auto started = Engine::start(configFromYaml(engineYaml(backends)));
  QVERIFY2(started.ok(), std::string(started.status().message()).c_str());
  auto& engine = **started;
  for (int i = 0; i < 3; ++i) QVERIFY(postJson(engine.port(), "/v1/chat/completions", kChat).status >= 500);
  QVERIFY(waitFor([&] { return engine.backends()[0].requests == 3; }, std::chrono::seconds(10)));
  auto b = engine.backends();
  QCOMPARE(b[0].failures, uint64_t(3));
  QVERIFY2(b[0].last_error.find("answered HTTP 5") == 0, b[0].last_error.c_str());
  QVERIFY(b[0].last_error_ms > 0);
}

void BalancingTest::engineRefusesBadBackendChanges() {
  auto started = Engine::start(configFromYaml(engineYaml(kTwoInstantSims)));
  QVERIFY(started.ok());
  auto& engine = **started;
  QCOMPARE(engine.ejectBackend("nope", std::chrono::seconds(1), "t").code(), absl::StatusCode::kNotFound);
  QCOMPARE(engine.setBackendWeight("nope", 1, "t").code(), absl::StatusCode::kNotFound);
  QCOMPARE(engine.setBackendWeight("a", 10001, "t").code(), absl::StatusCode::kInvalidArgument);
  QCOMPARE(engine.ejectBackend("a", std::chrono::hours(25), "t").code(), absl::StatusCode::kInvalidArgument);
  QVERIFY(engine.backends()[0].weight == 1);
}

void BalancingTest::loadMetricsAreParsed() {
  const std::string vllm = R"(# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="a"} 3.0
vllm:num_requests_running{model_name="b"} 2
vllm:num_requests_waiting{model_name="a"} 7 1700000000000
vllm:gpu_cache_usage_perc{model_name="a"} 0.5
vllm:num_requests_running_total 99
garbage line
vllm:num_requests_waiting{model_name="x"} not-a-number
)";
  auto r = upstream::parseLoadMetrics(vllm);
  QVERIFY(r.has_value());
  QCOMPARE(r->running, 5.0);   // summed over models; the _total family is another name
  QCOMPARE(r->waiting, 7.0);   // the timestamp is not the value
  QCOMPARE(r->cache_usage, 0.5);
  auto sglang = upstream::parseLoadMetrics("sglang:num_running_reqs 4\nsglang:num_queue_reqs 1\nsglang:token_usage 0.25\n");
  QVERIFY(sglang.has_value());
  QCOMPARE(sglang->running, 4.0);
  QCOMPARE(sglang->waiting, 1.0);
  QCOMPARE(sglang->cache_usage, 0.25);
  QVERIFY(!upstream::parseLoadMetrics("process_cpu_seconds_total 12\n").has_value());
  QVERIFY(!upstream::parseLoadMetrics("").has_value());

  // Backend::load(): the larger of its own count and a fresh report.
  auto b = makeBackend("a", 1);
  QVERIFY(b->tryAcquire());
  QCOMPARE(b->load(), int64_t(1));
  b->setReportedLoad(4, 2, 0.1, common::wallClockMs() + 60'000);
  QCOMPARE(b->load(), int64_t(6));
  b->setReportedLoad(4, 2, 0.1, common::wallClockMs() - 1);  // stale: ignored
  QCOMPARE(b->load(), int64_t(1));
  b->release();
}

void BalancingTest::reportedLoadSteersLeastOutstanding() {
  // b is busy with traffic that does not pass through this gateway (another
  // replica's, sent straight to it here): only its own gauges show it.
  const std::string backends = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant}
  - name: b
    url: sim://b
    models: [m]
    sim: {profile: slow, max_num_seqs: 2, max_waiting: 64, min_output_tokens: 400, max_output_tokens: 400}
)";
  auto started = Engine::start(configFromYaml(engineYaml(
      backends, "upstream:\n  load_metrics: {path: /metrics, interval_ms: 50, max_age_ms: 60000}\n")));
  QVERIFY2(started.ok(), std::string(started.status().message()).c_str());
  auto& engine = **started;
  const uint16_t b_port = engine.simulator("b")->port();
  const std::string long_stream = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  std::vector<std::future<StreamResult>> outside;
  for (int i = 0; i < 6; ++i) outside.push_back(std::async(std::launch::async, [&] {
    // Each gives up after 5 s (the test is done by then), freeing the simulator.
    return streamRequest(b_port, "/v1/chat/completions", long_stream, std::chrono::seconds(5));
  }));
  auto statusOf = [&](const std::string& name) {
    for (const auto& s : engine.backends()) {
      if (s.name == name) return s;
    }
    return BackendStatus{};
  };
  QVERIFY(waitFor([&] { return statusOf("b").reported_running + statusOf("b").reported_waiting >= 6; },
                  std::chrono::seconds(20)));
  // With b reporting six requests, every pick prefers a (P2C over two
  // backends always compares both).
  for (int i = 0; i < 10; ++i) {
    QCOMPARE(postJson(engine.port(), "/v1/chat/completions", kChat).header("x-spillway-backend"), std::string("a"));
  }
  for (auto& f : outside) f.wait();
}

QTEST_GUILESS_MAIN(BalancingTest)
