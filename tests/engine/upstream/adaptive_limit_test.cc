#include "adaptive_limit_test.h"

#include <QtTest>

#include <random>

#include "upstream/adaptive_limit.h"

using namespace spillway;

void AdaptiveLimitTest::learnedLimitConvergesFromAboveAndBelow() {
  const uint32_t n_slots = 6;
  for (uint32_t initial : {1u, 40u}) {
    upstream::AdaptiveLimit l;
    l.configure({initial, 1, 256, 2.0, 0.75, /*probe_interval_ms=*/0});
    std::mt19937 rng(initial);
    std::uniform_real_distribution<double> prefill(100, 300);  // long and short prompts
    const double service_ms = 2000;
    for (int i = 0; i < 6000; ++i) {
      const uint32_t limit = l.limit();
      const double queued = limit > n_slots ? (limit - n_slots) * service_ms / n_slots : 0;
      l.onSample(prefill(rng) + queued, limit, prefill(rng) + queued + service_ms);
    }
    // Ends at the slot count or just above it (one or two requests waiting
    // in the server's queue keep its slots busy: harmless, and where the
    // noise of long prompts hides a short wait); never below it.
    QVERIFY2(l.limit() >= n_slots && l.limit() <= n_slots + 2,
             qPrintable(QString("from %1: limit %2").arg(initial).arg(l.limit())));
    QVERIFY2(l.baselineMs() >= 100 && l.baselineMs() < 200, qPrintable(QString::number(l.baselineMs())));
  }
}

void AdaptiveLimitTest::learnedLimitCutsOnOverloadOncePerBurst() {
  upstream::AdaptiveLimit l;
  l.configure({8, 1, 256, 2.0, 0.5});
  for (int i = 0; i < 8; ++i) l.onSample(10, 1, 100);  // a baseline
  QVERIFY(!l.probing());
  QCOMPARE(l.limit(), 8u);
  l.onOverload(1000);
  QCOMPARE(l.limit(), 4u);
  l.onOverload(1050);  // the same burst of refusals
  QCOMPARE(l.limit(), 4u);
  l.onOverload(1200);
  QCOMPARE(l.limit(), 2u);
  l.onOverload(1400);
  l.onOverload(1600);
  QCOMPARE(l.limit(), 1u);  // never below min
  QCOMPARE(l.cuts(), uint64_t{4});
}

void AdaptiveLimitTest::learnedLimitIgnoresSlowRequestsBelowTheLimit() {
  // Light load with long prompts mixed in (slow first tokens that are not
  // queueing): the limit stays where it was.
  upstream::AdaptiveLimit l;
  l.configure({8, 1, 256, 2.0, 0.75});
  for (int i = 0; i < 8; ++i) l.onSample(60, 1, 800);  // 60 ms unloaded
  std::mt19937 rng(3);
  for (int i = 0; i < 1500; ++i) l.onSample(rng() % 2 ? 60 : 600, 1 + rng() % 4, 1200);
  QCOMPARE(l.limit(), 8u);
  QCOMPARE(l.cuts(), uint64_t{0});
  // Scheduling noise of a few ms on a full backend is not queueing either:
  // the slack is half a slot's turnover (800 ms / 8 / 2 = 50 ms).
  for (int i = 0; i < 64; ++i) l.onSample(60 * 2 + 40, 8, 800);
  QCOMPARE(l.cuts(), uint64_t{0});
  QVERIFY(l.limit() > 8u);
}

void AdaptiveLimitTest::learnedLimitFollowsTheBackendsReportedQueue() {
  upstream::AdaptiveLimit l;
  l.configure({8, 1, 256, 2.0, 0.75});
  for (int i = 0; i < 8; ++i) l.onSample(60, 1, 800);  // 60 ms unloaded
  // Full rounds whose waits look unloaded, while the backend says requests
  // wait in its own queue (it reports num_requests_waiting): it is queueing.
  for (int i = 0; i < 8; ++i) l.onSample(60, 8, 800, 2);
  QCOMPARE(l.limit(), 7u);
  QCOMPARE(l.cuts(), uint64_t{1});
  // A round in which its queue was empty once: not queueing — even with
  // slow first tokens (long prompts) that the wait rule would cut on.
  for (int i = 0; i < 7; ++i) l.onSample(900, 7, 1500, i == 3 ? 0 : 1);
  QCOMPARE(l.limit(), 8u);
  for (int i = 0; i < 8; ++i) l.onSample(900, 8, 1500, 0);
  QCOMPARE(l.limit(), 9u);
  // Without a report, the wait rule decides again: 900 ms against a 60 ms
  // baseline is queueing.
  for (int i = 0; i < 9; ++i) l.onSample(900, 9, 1500);
  QCOMPARE(l.limit(), 8u);
}

QTEST_APPLESS_MAIN(AdaptiveLimitTest)
