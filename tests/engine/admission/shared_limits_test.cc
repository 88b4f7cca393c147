#include "shared_limits_test.h"

#include <QtTest>

#include <chrono>

#include "engine.h"
#include "support/redis_server.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

// Simulators that use every token they are allowed (400), so the usage
// reconciled at the end leaves each request's charge where admission put it.
const char* kFullAnswers = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant, min_output_tokens: 400, max_output_tokens: 400}
)";

std::unique_ptr<Engine> start(uint16_t redis_port, const std::string& limit, const char* backends = kFullAnswers) {
  const std::string extra = "limits:\n  redis: {address: \"127.0.0.1:" + std::to_string(redis_port) +
                            "\", timeout_ms: 200}\n  global: " + limit + "\n";
  auto e = Engine::start(configFromYaml(engineYaml(backends, extra)), EngineOptions{"", "test", false});
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

const std::string kChat = R"({"model":"m","max_tokens":400,"messages":[{"role":"user","content":"hi"}]})";

}  // namespace

void SharedLimitsTest::twoEnginesShareOneLimit() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  // 1,000 tokens a minute: two requests of ~400 fit, then one more every 24 s.
  auto a = start(redis.port(), "{tokens_per_minute: 1000}");
  auto b = start(redis.port(), "{tokens_per_minute: 1000}");
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0, limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = postJson((i % 2 ? a : b)->port(), "/v1/chat/completions", kChat);
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      QCOMPARE(r.header("x-spillway-drop-reason"), "rate_limited");
      QVERIFY(!r.header("retry-after").empty());
      QVERIFY(!r.header("x-ratelimit-remaining-tokens").empty());
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  QCOMPARE(ok + limited, 6);
  // One limit for both (two engines on their own would let four through).
  QVERIFY2(ok >= 2 && ok <= 2 + static_cast<int>(elapsed / 24), qPrintable(QString("%1 allowed").arg(ok)));
  QVERIFY(a->admission().redis_up);
  QCOMPARE(a->admission().redis_fallbacks, uint64_t{0});
}

void SharedLimitsTest::fallsBackWhenRedisDiesAndReturns() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  auto e = start(redis.port(), "{requests_per_minute: 1000}");
  QCOMPARE(postJson(e->port(), "/v1/chat/completions", kChat).status, 200);
  QVERIFY(e->metricsText().find("spillway_ratelimit_redis_up 1") != std::string::npos);

  redis.kill();
  for (int i = 0; i < 3; ++i) {
    auto r = postJson(e->port(), "/v1/chat/completions", kChat);
    QCOMPARE(r.status, 200);  // limited locally meanwhile, never an error
  }
  QVERIFY(!e->admission().redis_up);
  QVERIFY(e->admission().redis_fallbacks >= 3);
  QVERIFY(e->metricsText().find("spillway_ratelimit_redis_up 0") != std::string::npos);

  RedisServer again;
  QVERIFY2(again.start(redis.port()), qPrintable(again.error()));
  // Back to Redis within about a second (the limiter's retry interval).
  QVERIFY(waitFor([&] {
    postJson(e->port(), "/v1/chat/completions", kChat);
    return e->admission().redis_up;
  }));
}

void SharedLimitsTest::usageIsReconciledInRedis() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  // Each request is charged ~400 tokens at admission, but the simulators
  // answer in a few dozen: the usage given back in Redis lets six through
  // a 1,000-token minute (without it, two).
  auto e = start(redis.port(), "{tokens_per_minute: 1000}", kTwoInstantSims);
  // (An answer is written just before its usage is given back, so a request
  // sent at once may still meet the full charge: keep asking, bounded.
  // Without the refunds only two would pass in the bound, one more every 24 s.)
  int ok = 0;
  QVERIFY(waitFor([&] {
    if (postJson(e->port(), "/v1/chat/completions", kChat).status == 200) ++ok;
    return ok >= 6;
  }));
  QCOMPARE(e->admission().redis_fallbacks, uint64_t{0});
}

QTEST_APPLESS_MAIN(SharedLimitsTest)
