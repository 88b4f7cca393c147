#include "limits_test.h"

#include <QtTest>

#include <thread>
#include <vector>

#include "admission/gcra.h"
#include "admission/rate_limit.h"

using namespace spillway;
using namespace spillway::admission;

namespace {

constexpr int64_t kSec = 1'000'000'000;

}  // namespace

void LimitsTest::gcraBurstThenRefill() {
  Gcra g(10, kSec);  // 10 per second, all at once
  int64_t t = 100 * kSec;
  for (int i = 0; i < 10; ++i) QVERIFY(g.take(1, t).allowed);
  auto refused = g.take(1, t);
  QVERIFY(!refused.allowed);
  QCOMPARE(refused.remaining, 0.0);
  QVERIFY(std::abs(refused.retry_after_seconds - 0.1) < 1e-6);  // one unit refills in 100 ms
  QVERIFY(std::abs(refused.reset_seconds - 1.0) < 1e-6);        // full again in 1 s
  QVERIFY(!g.take(1, t + kSec / 10 - 1).allowed);
  QVERIFY(g.take(1, t + kSec / 10).allowed);
  // A cost bigger than what refilled waits for the difference.
  auto big = g.take(5, t + kSec / 10);
  QVERIFY(!big.allowed);
  QVERIFY(std::abs(big.retry_after_seconds - 0.5) < 1e-6);
  // After a full period it is all there again.
  auto full = g.peek(t + 10 * kSec);
  QCOMPARE(full.remaining, 10.0);
  QVERIFY(g.idle(t + 10 * kSec));
}

void LimitsTest::gcraIsExactUnderConcurrency() {
  Gcra g(1000, 60 * kSec);
  const int64_t t = 5 * kSec;  // one instant: no refill while the threads race
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 500; ++k) {
        if (g.take(1, t).allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  QCOMPARE(allowed.load(), 1000);  // 4,000 tries, exactly the limit let through
}

void LimitsTest::gcraRefundsAndDebt() {
  Gcra g(100, 60 * kSec);
  const int64_t t = 10 * kSec;
  QVERIFY(g.take(100, t).allowed);
  QVERIFY(!g.take(1, t).allowed);
  g.adjust(-40, t);  // 40 estimated units were not used
  QCOMPARE(g.peek(t).remaining, 40.0);
  g.adjust(+90, t);  // more than estimated: the bucket goes into debt
  QCOMPARE(g.peek(t).remaining, 0.0);
  QVERIFY(!g.take(1, t + 30 * kSec).allowed);  // 50 units of debt take 30 s to clear
  QVERIFY(g.take(1, t + 31 * kSec).allowed);
}

void LimitsTest::rateLimitsAreAllOrNothing() {
  v1::Limits limits;
  limits.mutable_global()->set_requests_per_minute(3);
  limits.mutable_per_key()->set_requests_per_minute(100);
  RateLimiter rl(limits);
  const int64_t t = kSec;
  RateLimiter::Ask a;
  a.key = "alice";
  a.model = "m";
  for (int i = 0; i < 3; ++i) QVERIFY(rl.check(a, t).allowed);
  auto r = rl.check(a, t);
  QVERIFY(!r.allowed);
  QVERIFY(r.retry_after_seconds > 19 && r.retry_after_seconds <= 20);  // one of 3 per minute refills in 20 s
  QCOMPARE(rl.refused(), uint64_t{1});
  // The refusal took nothing from alice's own bucket: 97 left, not 96.
  bool found = false;
  for (const auto& u : rl.usage(t, 10)) {
    if (u.scope == "key:alice") {
      found = true;
      QCOMPARE(u.requests_remaining, 97.0);
    }
  }
  QVERIFY(found);
  // The tightest bucket is the one the headers report.
  QCOMPARE(r.requests.limit, 3.0);
}

void LimitsTest::tokensAreReconciledWithUsage() {
  v1::Limits limits;
  limits.mutable_per_model()->set_tokens_per_minute(1000);
  RateLimiter rl(limits);
  const int64_t t = kSec;
  RateLimiter::Ask a;
  a.model = "m";
  a.tokens = 600;  // prompt estimate + max_tokens
  auto first = rl.check(a, t);
  QVERIFY(first.allowed);
  QCOMPARE(first.tokens.remaining, 400.0);
  QVERIFY(!rl.check(a, t).allowed);  // another 600 does not fit
  // The answer used 150 tokens in all: 450 come back.
  RateLimiter::reconcile(first.charge, 150, t);
  auto second = rl.check(a, t);
  QVERIFY(second.allowed);
  QCOMPARE(second.tokens.remaining, 250.0);
  // A stream that ran over its estimate is charged the difference.
  RateLimiter::reconcile(second.charge, 700, t);
  QCOMPARE(rl.usage(t, 5).front().tokens_remaining, 150.0);
}

QTEST_APPLESS_MAIN(LimitsTest)
