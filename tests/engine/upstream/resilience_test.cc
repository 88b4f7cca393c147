#include "resilience_test.h"

#include <QtTest>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "engine.h"
#include "pipeline/retry_budget.h"
#include "sim/sim_server.h"
#include "support/test_config.h"
#include "support/test_http.h"
#include "upstream/outlier_detector.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

const std::string kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
const std::string kStream = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";

upstream::BackendPtr makeBackend(const std::string& name, bool health_checks = true) {
  v1::Backend c;
  c.set_name(name);
  c.set_weight(1);
  c.mutable_health_check()->set_path(health_checks ? "/health" : "none");
  return std::make_shared<upstream::Backend>(0, c, common::Url{}, "");
}

v1::OutlierDetection outlierSettings(uint32_t failures, uint32_t base_ms, uint32_t max_ms, uint32_t max_percent) {
  v1::OutlierDetection o;
  o.set_consecutive_failures(failures);
  o.set_base_ejection_ms(base_ms);
  o.set_max_ejection_ms(max_ms);
  o.set_max_ejection_percent(max_percent);
  return o;
}

std::unique_ptr<Engine> start(const std::string& backends, const std::string& extra) {
  auto e = Engine::start(configFromYaml(engineYaml(backends, extra)));
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

// A copy: engine->backends() is a temporary (ASan caught a pointer into one).
BackendStatus find(const std::vector<BackendStatus>& all, const std::string& name) {
  for (const auto& b : all) {
    if (b.name == name) return b;
  }
  return {};
}

std::string sims(const std::string& bad_failures) {
  return R"(  - name: bad
    url: sim://bad
    models: [m]
    sim: {profile: instant, failures: )" + bad_failures + R"(}
  - name: good
    url: sim://good
    models: [m]
    sim: {profile: instant}
)";
}

}  // namespace

void ResilienceTest::outlierEjectionGrowsAndIsCapped() {
  auto events = std::make_shared<upstream::BackendEvents>();
  upstream::OutlierDetector d(outlierSettings(3, 1000, 2500, 50), /*slow_start_ms=*/1, /*busy_cooldown_ms=*/500, events);
  std::vector<upstream::BackendPtr> pool = {makeBackend("a"), makeBackend("b"), makeBackend("c"), makeBackend("d")};
  auto& a = *pool[0];
  int64_t now = 1'000'000;
  d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "answered HTTP 500");
  d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "answered HTTP 500");
  d.onAttempt(a, upstream::AttemptResult::kSuccess, pool, now);  // a success resets the run
  d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "answered HTTP 500");
  d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "answered HTTP 500");
  QVERIFY(!a.ejected());
  d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "answered HTTP 500");
  QVERIFY(a.ejected());
  QCOMPARE(a.ejectedUntilMs(), now + 1000);  // base x 1
  QCOMPARE(events->list().size(), size_t(1));
  QCOMPARE(events->list()[0].kind, std::string("ejected"));
  QVERIFY2(events->list()[0].reason.find("3 failures in a row") == 0, events->list()[0].reason.c_str());
  a.tick(now + 1000);
  QVERIFY(!a.ejected());
  // The second ejection lasts twice as long, the third is capped at 2500.
  now += 1000;
  for (int i = 0; i < 3; ++i) d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "x");
  QCOMPARE(a.ejectedUntilMs(), now + 2000);
  a.tick(now + 2000);
  now += 2000;
  for (int i = 0; i < 3; ++i) d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "x");
  QCOMPARE(a.ejectedUntilMs(), now + 2500);
  // 50 % of four: b may join a, c may not.
  for (int i = 0; i < 3; ++i) d.onAttempt(*pool[1], upstream::AttemptResult::kFailure, pool, now, {}, "x");
  QVERIFY(pool[1]->ejected());
  for (int i = 0; i < 10; ++i) d.onAttempt(*pool[2], upstream::AttemptResult::kFailure, pool, now, {}, "x");
  QVERIFY(!pool[2]->ejected());
  QCOMPARE(pool[2]->consecutiveFailures(), 10u);  // still counted
  // After five good minutes, the count starts over.
  a.tick(now + 2500);
  now += 2500 + 300'001;
  for (int i = 0; i < 3; ++i) d.onAttempt(a, upstream::AttemptResult::kFailure, pool, now, {}, "x");
  QCOMPARE(a.ejectedUntilMs(), now + 1000);
  // Disabled: counted, never ejected.
  auto off = outlierSettings(1, 1000, 1000, 100);
  off.set_disabled(true);
  upstream::OutlierDetector none(off, 1, 500, nullptr);
  auto e = makeBackend("e");
  for (int i = 0; i < 5; ++i) none.onAttempt(*e, upstream::AttemptResult::kFailure, {}, now, {}, "x");
  QVERIFY(!e->ejected());
}

void ResilienceTest::backOffFollowsRetryAfter() {
  upstream::OutlierDetector d(outlierSettings(5, 1000, 1000, 100), 1, /*busy_cooldown_ms=*/700, nullptr);
  auto a = makeBackend("a");
  const int64_t now = common::wallClockMs();
  d.onAttempt(*a, upstream::AttemptResult::kBusy, {}, now, "30");
  QVERIFY(a->backingOff());
  QCOMPARE(a->state(), std::string_view("backing_off"));
  QCOMPARE(a->backOffUntilMs(), now + 30'000);
  QCOMPARE(a->consecutiveFailures(), 0u);  // busy is not broken
  auto b = makeBackend("b");
  d.onAttempt(*b, upstream::AttemptResult::kBusy, {}, now, "");  // no header: the configured cool-down
  QCOMPARE(b->backOffUntilMs(), now + 700);
  auto c = makeBackend("c");
  d.onAttempt(*c, upstream::AttemptResult::kBusy, {}, now, "86400");  // capped at 300 s
  QCOMPARE(c->backOffUntilMs(), now + 300'000);
  c->tick(now + 300'000);
  QVERIFY(!c->backingOff());
  QCOMPARE(c->backOffs(), uint64_t(1));
}

void ResilienceTest::retryBudgetBoundsRetries() {
  pipeline::RetryBudget budget(20, 3);
  for (int i = 0; i < 10; ++i) budget.requestStarted();
  // 20 % of 10 is 2, the floor is 3.
  QVERIFY(budget.tryStartRetry());
  QVERIFY(budget.tryStartRetry());
  QVERIFY(budget.tryStartRetry());
  QVERIFY(!budget.tryStartRetry());
  budget.retryEnded();
  QVERIFY(budget.tryStartRetry());
  for (int i = 0; i < 90; ++i) budget.requestStarted();  // 100 active: 20 allowed
  int granted = 0;
  while (budget.tryStartRetry()) ++granted;
  QCOMPARE(granted, 20 - 3);
  QCOMPARE(budget.retries(), int64_t(20));
}

void ResilienceTest::failingBackendIsEjectedAndClientsSeeNoErrors() {
  auto engine = start(sims("{rate: 1, kind: http_500}"),
                      "upstream:\n  balancing: {policy: round_robin}\n"
                      "  outlier_detection: {consecutive_failures: 3, base_ejection_ms: 600000}\n");
  for (int i = 0; i < 20; ++i) {
    auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
    QCOMPARE(r.status, 200);
    QCOMPARE(r.header("x-spillway-backend"), std::string("good"));
  }
  auto all = engine->backends();
  QCOMPARE(find(all, "bad").state, std::string("ejected"));
  QCOMPARE(find(all, "bad").ejections, uint64_t(1));
  // Three attempts reached it before the ejection; each was retried.
  QCOMPARE(engine->retriesTotal(), uint64_t(3));
  auto events = engine->backendEvents();
  QCOMPARE(events.size(), size_t(1));
  QCOMPARE(events[0].backend, std::string("bad"));
  QVERIFY2(events[0].reason.find("answered HTTP 500") != std::string::npos, events[0].reason.c_str());
  const std::string metrics = engine->metricsText();
  QVERIFY(metrics.find("spillway_backend_state{backend=\"bad\",state=\"ejected\"} 1") != std::string::npos);
  QVERIFY(metrics.find("spillway_backend_ejections{backend=\"bad\"} 1") != std::string::npos);
  QVERIFY(metrics.find("spillway_upstream_retries_total{backend=\"good\",reason=\"another_backend\"} 3") !=
          std::string::npos);
}

void ResilienceTest::busyBackendBacksOffAndTheOtherServes() {
  auto engine = start(sims("{rate: 1, kind: http_429, retry_after_seconds: 30}"),
                      "upstream:\n  balancing: {policy: round_robin}\n");
  const int64_t before = common::wallClockMs();
  for (int i = 0; i < 6; ++i) QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
  const auto bad = find(engine->backends(), "bad");
  QCOMPARE(bad.state, std::string("backing_off"));
  QVERIFY(bad.back_off_until_ms >= before + 30'000 && bad.back_off_until_ms <= common::wallClockMs() + 30'000);
  QCOMPARE(bad.back_offs, uint64_t(1));
  QCOMPARE(engine->backendEvents().at(0).kind, std::string("backed_off"));
  // Without admission (a plain proxy), when the only backend left answers
  // busy too the client gets its answer. (With admission the request waits
  // for it instead: gateway_errors_test's busyBackendIsRequeuedNotRelayed.)
  auto lone = start(R"(  - name: busy
    url: sim://busy
    models: [m]
    sim: {profile: instant, failures: {rate: 1, kind: http_503}}
)", "admission: {disabled: true}\n");
  auto r = postJson(lone->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 503);
  QCOMPARE(r.header("x-spillway-backend"), std::string("busy"));
  QVERIFY(!r.header("retry-after").empty());
}

void ResilienceTest::noRetryAfterTheFirstByte() {
  // Every stream from "bad" breaks after a few tokens: the client already
  // has the head, so it must see the break, and "good" must never see it.
  auto engine = start(sims("{rate: 1, kind: reset_mid_stream}"),
                      "upstream:\n  balancing: {policy: round_robin}\n");
  auto r = streamRequest(engine->port(), "/v1/chat/completions", kStream);
  QCOMPARE(r.status, 200);
  QCOMPARE(r.headers["x-spillway-backend"], std::string("bad"));
  QVERIFY(!r.complete);
  QVERIFY(!r.sawDone());
  QCOMPARE(engine->simulator("good")->counters().completed, uint64_t(0));
  QCOMPARE(engine->retriesTotal(), uint64_t(0));
}

void ResilienceTest::singleAttemptRelaysTheUpstreamAnswer() {
  auto engine = start(sims("{rate: 1, kind: http_500}"),
                      "upstream:\n  balancing: {policy: round_robin}\n  retry: {max_attempts: 1}\n");
  auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 500);
  QCOMPARE(r.header("x-spillway-backend"), std::string("bad"));
  QVERIFY(r.body.find("Injected failure") != std::string::npos);
  QCOMPARE(engine->retriesTotal(), uint64_t(0));
}

void ResilienceTest::refusedBackendWithoutHealthChecksComesBack() {
  // Before: a refused connect marked the backend down, and with health
  // checks off nothing ever marked it up again.
  const uint16_t port = closedPort();
  auto engine = start("  - name: gone\n    url: http://127.0.0.1:" + std::to_string(port) +
                          "\n    models: [m]\n    health_check: {path: none}\n" + R"(  - name: good
    url: sim://good
    models: [m]
    sim: {profile: instant}
)",
                      "upstream:\n  balancing: {policy: round_robin}\n  slow_start_ms: 1\n"
                      "  outlier_detection: {base_ejection_ms: 1}\n");
  auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 200);
  QCOMPARE(r.header("x-spillway-backend"), std::string("good"));
  const auto gone = find(engine->backends(), "gone");
  QVERIFY(gone.healthy);  // not marked down for good
  QCOMPARE(gone.ejections, uint64_t(1));
  // The ejection ends at the engine's next tick (once a second).
  QVERIFY(waitFor([&] { return find(engine->backends(), "gone").state == "up"; }, std::chrono::seconds(10)));
}

void ResilienceTest::policySwitchedLiveUnderLoadFailsNothing() {
  auto engine = start(kTwoInstantSims, "");
  std::atomic<int> ok{0}, failed{0};
  ClientThreads clients;
  for (int t = 0; t < 3; ++t) {
    clients.start([&] {
      while (!clients.stopping()) {
        auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
        (r.status == 200 ? ok : failed)++;
      }
    });
  }
  const char* policies[] = {"round_robin", "weighted_random", "latency_weighted", "consistent_hash",
                            "prefix_affinity", "least_outstanding"};
  int applied = 0;
  for (const char* p : policies) {
    const int seen = ok.load();
    // Wait for traffic between applies, so each policy serves some of it.
    QVERIFY(waitFor([&] { return ok.load() >= seen + 5 || failed.load() > 0; }));
    auto cfg = configFromYaml(engineYaml(kTwoInstantSims, std::string("upstream:\n  balancing: {policy: ") + p + "}\n"));
    auto res = engine->applyConfig(cfg, {.actor = "test"});
    if (res.ok()) ++applied;
    QCOMPARE(engine->pools().at(0).policy, std::string(p));
  }
  const int seen = ok.load();
  QVERIFY(waitFor([&] { return ok.load() >= seen + 5 || failed.load() > 0; }));
  clients.stop();
  QCOMPARE(applied, 6);
  QCOMPARE(failed.load(), 0);
  QVERIFY(ok.load() >= 35);
}

void ResilienceTest::affinityCookieIsSetAndHonoured() {
  auto engine = start(kTwoInstantSims, "upstream:\n  balancing: {policy: consistent_hash, hash_key: cookie}\n");
  auto first = postJson(engine->port(), "/v1/chat/completions", kChat);
  QCOMPARE(first.status, 200);
  const std::string set = first.header("set-cookie");
  QVERIFY2(set.rfind("route=", 0) == 0 && set.find("; Path=/; HttpOnly") != std::string::npos, set.c_str());
  const std::string cookie = set.substr(0, set.find(';'));
  const std::string home = first.header("x-spillway-backend");
  std::set<std::string> cookies_seen_on;
  for (int i = 0; i < 10; ++i) {
    auto r = httpRequest(engine->port(), "POST", "/v1/chat/completions", kChat,
                         {{"Content-Type", "application/json"}, {"Cookie", "theme=dark; " + cookie}});
    QCOMPARE(r.status, 200);
    QCOMPARE(r.header("x-spillway-backend"), home);
    QVERIFY(r.header("set-cookie").empty());  // it has one: none set again
  }
  // New visitors get their own cookies, and land on both backends.
  std::set<std::string> homes;
  for (int i = 0; i < 30; ++i) homes.insert(postJson(engine->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"));
  QCOMPARE(homes.size(), size_t(2));
}

void ResilienceTest::sessionHeaderKeepsABackend() {
  auto engine = start(kTwoInstantSims, "upstream:\n  balancing: {policy: consistent_hash, hash_key: header}\n");
  std::set<std::string> homes;
  for (int s = 0; s < 20; ++s) {
    const std::string session = "session-" + std::to_string(s);
    std::string home;
    for (int i = 0; i < 3; ++i) {
      auto r = httpRequest(engine->port(), "POST", "/v1/chat/completions", kChat,
                           {{"Content-Type", "application/json"}, {"x-session-id", session}});
      QCOMPARE(r.status, 200);
      QVERIFY(r.header("set-cookie").empty());
      if (home.empty()) home = r.header("x-spillway-backend");
      QCOMPARE(r.header("x-spillway-backend"), home);
    }
    homes.insert(home);
  }
  QCOMPARE(homes.size(), size_t(2));
}

void ResilienceTest::defaultChainKeysOnWhatTheClientSends() {
  auto engine = start(kTwoInstantSims, "upstream:\n  balancing: {policy: consistent_hash}\n");
  const uint16_t port = engine->port();
  auto chat = [&](const std::string& user, Headers headers) {
    headers.push_back({"Content-Type", "application/json"});
    const std::string body = user.empty() ? kChat
                                          : R"({"model":"m","user":")" + user + R"(","messages":[{"role":"user","content":"hi"}]})";
    auto r = httpRequest(port, "POST", "/v1/chat/completions", body, headers);
    if (r.status != 200) qFatal("status %d", r.status);
    return r;
  };
  // The session header first: sticky per session, whatever the user field says.
  std::set<std::string> homes;
  for (int s = 0; s < 16; ++s) {
    const Headers session = {{"x-session-id", "s-" + std::to_string(s)}};
    const std::string home = chat("", session).header("x-spillway-backend");
    for (int i = 0; i < 3; ++i) {
      auto r = chat("user-" + std::to_string(i), session);
      QCOMPARE(r.header("x-spillway-backend"), home);
      QVERIFY(r.header("set-cookie").empty());
    }
    homes.insert(home);
  }
  QCOMPARE(homes.size(), size_t(2));
  // Without it, the OpenAI "user" field (what the SDKs send).
  homes.clear();
  for (int u = 0; u < 16; ++u) {
    const std::string user = "user-" + std::to_string(u);
    const std::string home = chat(user, {}).header("x-spillway-backend");
    for (int i = 0; i < 3; ++i) QCOMPARE(chat(user, {}).header("x-spillway-backend"), home);
    homes.insert(home);
  }
  QCOMPARE(homes.size(), size_t(2));
  // Nothing at all: the client's address, handed back as the cookie, which
  // keeps the same backend.
  auto bare = chat("", {});
  const std::string set = bare.header("set-cookie");
  QVERIFY2(set.rfind("route=", 0) == 0, set.c_str());
  const std::string home = bare.header("x-spillway-backend");
  QCOMPARE(chat("", {}).header("x-spillway-backend"), home);
  auto with_cookie = chat("", {{"Cookie", set.substr(0, set.find(';'))}});
  QCOMPARE(with_cookie.header("x-spillway-backend"), home);
  QVERIFY(with_cookie.header("set-cookie").empty());
}

void ResilienceTest::metricCachesStayBoundedAcrossApplies() {
  // Before: every apply made new pool ids, and each worker's metric cache
  // kept the handles of every pool it had ever seen.
  auto engine = start(kTwoInstantSims, "");
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
  QVERIFY(waitFor([&] { return engine->totals().requests == 1; }));
  const size_t after_one = engine->cachedMetricHandles();
  QVERIFY(after_one > 0);
  for (int i = 1; i <= 10; ++i) {
    auto cfg = configFromYaml(engineYaml(kTwoInstantSims));
    cfg.mutable_server()->set_retry_after_seconds(i + 1);  // any change makes a new table
    QVERIFY(engine->applyConfig(cfg, {.actor = "test"}).ok());
    QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
    QVERIFY(waitFor([&] { return engine->totals().requests == uint64_t(i + 1); }));
  }
  // Two worker threads, each holding at most a counter, a duration and a
  // TTFT handle for the live pool (11 pools were made in all).
  QVERIFY(after_one <= 3);
  QVERIFY2(engine->cachedMetricHandles() <= 6, std::to_string(engine->cachedMetricHandles()).c_str());
}

QTEST_GUILESS_MAIN(ResilienceTest)
