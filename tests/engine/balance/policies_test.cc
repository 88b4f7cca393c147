#include "policies_test.h"

#include <QtTest>

#include <cmath>
#include <map>
#include <set>

#include "balance/balancer.h"
#include "balance/consistent_hash.h"
#include "balance/latency_weighted.h"
#include "balance/prefix_affinity.h"
#include "upstream/backend.h"

using namespace spillway;
using balance::PickOutcome;

namespace {

upstream::BackendPtr makeBackend(const std::string& name, uint32_t weight = 1, uint32_t max_concurrency = 0) {
  v1::Backend c;
  c.set_name(name);
  c.set_weight(weight);
  c.set_max_concurrency(max_concurrency);
  return std::make_shared<upstream::Backend>(0, c, common::Url{}, "");
}

std::vector<upstream::BackendPtr> makePool(int n) {
  std::vector<upstream::BackendPtr> pool;
  for (int i = 0; i < n; ++i) pool.push_back(makeBackend("b" + std::to_string(i)));
  return pool;
}

balance::BalancerPtr make(v1::BalancingPolicy policy, v1::Balancing s = {}) {
  s.set_policy(policy);
  auto b = balance::makeBalancer(balance::effectiveBalancing(s, {}), /*seed=*/42);
  if (!b.ok()) qFatal("makeBalancer failed");
  return std::move(*b);
}

// Picks and releases `n` times; counts winners by name.
std::map<std::string, int> spread(balance::Balancer& lb, const std::vector<upstream::BackendPtr>& pool, int n,
                                  const balance::PickContext& ctx = {}) {
  std::map<std::string, int> out;
  for (int i = 0; i < n; ++i) {
    auto r = lb.pick(pool, ctx);
    if (r.outcome != PickOutcome::kPicked) {
      out["<none>"]++;
      continue;
    }
    out[r.backend->name()]++;
    r.backend->release();
  }
  return out;
}

std::string sequence(balance::Balancer& lb, const std::vector<upstream::BackendPtr>& pool, int n) {
  std::string seq;
  for (int i = 0; i < n; ++i) {
    auto r = lb.pick(pool);
    seq += r.outcome == PickOutcome::kPicked ? r.backend->name() : "-";
    if (r.backend) r.backend->release();
  }
  return seq;
}

balance::PickContext keyed(uint64_t key) {
  balance::PickContext c;
  c.hash_key = key;
  c.has_hash_key = true;
  return c;
}

// The backend a key maps to (released at once).
std::string ownerOf(balance::Balancer& lb, const std::vector<upstream::BackendPtr>& pool, uint64_t key) {
  auto r = lb.pick(pool, keyed(key));
  if (r.outcome != PickOutcome::kPicked) return "<none>";
  r.backend->release();
  return r.backend->name();
}

}  // namespace

void PoliciesTest::smoothRoundRobinAlternatesAndInterleaves() {
  auto lb = make(v1::ROUND_ROBIN);
  std::vector<upstream::BackendPtr> even = {makeBackend("A", 5), makeBackend("B", 5)};
  QCOMPARE(sequence(*lb, even, 6), std::string("ABABAB"));  // not AAAAABBBBB
  auto lb2 = make(v1::ROUND_ROBIN);
  std::vector<upstream::BackendPtr> skew = {makeBackend("A", 5), makeBackend("B", 1)};
  QCOMPARE(sequence(*lb2, skew, 12), std::string("AAABAAAAABAA"));
  auto lb3 = make(v1::ROUND_ROBIN);
  std::vector<upstream::BackendPtr> three = {makeBackend("A", 3), makeBackend("B", 1), makeBackend("C", 4)};
  auto got = spread(*lb3, three, 800);
  QCOMPARE(got["A"], 300);
  QCOMPARE(got["B"], 100);
  QCOMPARE(got["C"], 400);
}

void PoliciesTest::smoothRoundRobinFallsThroughWhenFull() {
  auto lb = make(v1::ROUND_ROBIN);
  std::vector<upstream::BackendPtr> pool = {makeBackend("A", 5, 1), makeBackend("B", 1, 1)};
  auto first = lb->pick(pool);
  QCOMPARE(first.backend->name(), std::string("A"));
  auto second = lb->pick(pool);  // A's turn again, but A is full
  QCOMPARE(second.outcome, PickOutcome::kPicked);
  QCOMPARE(second.backend->name(), std::string("B"));
  QCOMPARE(lb->pick(pool).outcome, PickOutcome::kAllBusy);
  first.backend->release();
  second.backend->release();
}

void PoliciesTest::weightedRandomFollowsTheWeights() {
  auto lb = make(v1::WEIGHTED_RANDOM);
  std::vector<upstream::BackendPtr> pool = {makeBackend("A", 3), makeBackend("B", 1)};
  const int n = 40000;
  auto got = spread(*lb, pool, n);
  // 75 % / 25 %; with a fixed seed the draw is the same every run, and
  // binomial noise at n = 40000 is 0.2 % (one sigma): 1 % is five sigmas.
  QVERIFY2(std::abs(got["A"] / double(n) - 0.75) < 0.01, std::to_string(got["A"]).c_str());
  QVERIFY2(std::abs(got["B"] / double(n) - 0.25) < 0.01, std::to_string(got["B"]).c_str());
}

void PoliciesTest::latencyWeightsFollowTheFormulaAndTheCut() {
  v1::Balancing s;
  s.set_policy(v1::LATENCY_WEIGHTED);
  s.set_slow_threshold_ms(100);
  balance::LatencyWeightedBalancer lb(balance::effectiveBalancing(s, {}), 1);
  auto fast = makeBackend("fast");
  auto slow = makeBackend("slow");
  auto fresh = makeBackend("fresh");
  fast->recordOutcome(false, 2.0, 100);  // 20 ms per token
  slow->recordOutcome(false, 1.5, 10);   // 150 ms per token: above the threshold
  QCOMPARE(fast->ewmaMsPerToken(), 20.0);
  QCOMPARE(slow->ewmaMsPerToken(), 150.0);
  // weight = 1 / (ms * 0.01 + 0.1)
  QVERIFY(std::abs(lb.dynamicWeight(*fast) - 1.0 / (20 * 0.01 + 0.1)) < 1e-9);
  // ... cut by 60 % while slow
  QVERIFY(std::abs(lb.dynamicWeight(*slow) - 0.4 / (150 * 0.01 + 0.1)) < 1e-9);
  // no samples yet: counts as fastest (1 / 0.1)
  QVERIFY(std::abs(lb.dynamicWeight(*fresh) - 10.0) < 1e-9);
  // the configured weight multiplies it; out of rotation is 0
  fast->setWeightOverride(3);
  QVERIFY(std::abs(lb.dynamicWeight(*fast) - 3.0 / (20 * 0.01 + 0.1)) < 1e-9);
  fast->setDraining(true);
  QCOMPARE(lb.dynamicWeight(*fast), 0.0);
  // Failed requests do not feed the per-token average.
  slow->recordOutcome(true, 100.0, 10);
  QCOMPARE(slow->ewmaMsPerToken(), 150.0);
}

void PoliciesTest::latencyWeightedSendsLessToTheSlowBackend() {
  auto lb = make(v1::LATENCY_WEIGHTED);
  std::vector<upstream::BackendPtr> pool = {makeBackend("fast"), makeBackend("slow")};
  pool[0]->recordOutcome(false, 0.2, 10);  // 20 ms/token: weight 3.33
  pool[1]->recordOutcome(false, 1.5, 10);  // 150 ms/token: 0.625 * 0.4 = 0.25
  const int n = 20000;
  auto got = spread(*lb, pool, n);
  const double expected_slow = 0.25 / (0.25 + 1.0 / 0.3);
  QVERIFY2(std::abs(got["slow"] / double(n) - expected_slow) < 0.01, std::to_string(got["slow"]).c_str());
}

void PoliciesTest::leastOutstandingPrefersTheLessLoaded() {
  auto lb = make(v1::LEAST_OUTSTANDING);
  auto pool = makePool(3);
  // b0 holds five requests; two random choices out of three always include
  // an idle backend, so b0 never wins.
  for (int i = 0; i < 5; ++i) QVERIFY(pool[0]->tryAcquire());
  auto got = spread(*lb, pool, 300);
  QCOMPARE(got.count("b0"), size_t(0));
  QVERIFY(got["b1"] > 100 && got["b2"] > 100);  // the idle two share (random ties)
  for (int i = 0; i < 5; ++i) pool[0]->release();
  // Held picks spread evenly: each new one goes to a least loaded backend.
  std::vector<upstream::BackendPtr> held;
  for (int i = 0; i < 30; ++i) held.push_back(lb->pick(pool).backend);
  for (const auto& b : pool) QVERIFY2(b->inFlight() >= 8 && b->inFlight() <= 12, b->name().c_str());
  for (auto& b : held) b->release();
}

void PoliciesTest::leastOutstandingWeighsByWeightOverActive() {
  auto lb = make(v1::LEAST_OUTSTANDING);
  std::vector<upstream::BackendPtr> pool = {makeBackend("heavy", 4), makeBackend("light", 1)};
  QVERIFY(pool[0]->tryAcquire());  // heavy: 4 / (1 + 1) = 2 > light: 1 / (0 + 1)
  QCOMPARE(lb->score(*pool[0]), 2.0);
  QCOMPARE(lb->score(*pool[1]), 1.0);
  auto r = lb->pick(pool);
  QCOMPARE(r.backend->name(), std::string("heavy"));
  r.backend->release();
  for (int i = 0; i < 4; ++i) QVERIFY(pool[0]->tryAcquire());  // 5 active: 4/6 < 1
  r = lb->pick(pool);
  QCOMPARE(r.backend->name(), std::string("light"));
  r.backend->release();
  for (int i = 0; i < 5; ++i) pool[0]->release();
}

void PoliciesTest::consistentHashIsStableWhenBackendsJoinOrLeave() {
  auto pool4 = makePool(4);
  std::vector<upstream::BackendPtr> pool3(pool4.begin(), pool4.begin() + 3);  // b3 left
  std::vector<upstream::BackendPtr> pool5 = pool4;
  pool5.push_back(makeBackend("b4"));  // b4 joined
  auto lb4 = make(v1::CONSISTENT_HASH);
  auto lb3 = make(v1::CONSISTENT_HASH);
  auto lb5 = make(v1::CONSISTENT_HASH);
  std::map<std::string, int> share;
  int moved_on_join = 0;
  for (uint64_t k = 0; k < 2000; ++k) {
    const uint64_t key = balance::hashBytes("session-" + std::to_string(k));
    const std::string owner = ownerOf(*lb4, pool4, key);
    share[owner]++;
    QCOMPARE(ownerOf(*lb4, pool4, key), owner);  // the same key, the same backend
    // Leave: only b3's keys move.
    if (owner != "b3") QCOMPARE(ownerOf(*lb3, pool3, key), owner);
    // Join: keys move only to the newcomer.
    const std::string after = ownerOf(*lb5, pool5, key);
    if (after != owner) {
      QCOMPARE(after, std::string("b4"));
      ++moved_on_join;
    }
  }
  // 100 points each: every backend owns a fair part of the ring, and the
  // newcomer takes about a fifth.
  for (const auto& [name, n] : share) QVERIFY2(n > 300 && n < 700, name.c_str());
  QVERIFY2(moved_on_join > 250 && moved_on_join < 600, std::to_string(moved_on_join).c_str());
}

void PoliciesTest::consistentHashRespectsItsLoadBound() {
  auto lb = make(v1::CONSISTENT_HASH);  // load_factor 0.25
  auto pool = makePool(4);
  const uint64_t hot = balance::hashBytes("one very hot session");
  std::vector<upstream::BackendPtr> held;
  for (int i = 0; i < 40; ++i) {
    int64_t total = 0;
    for (const auto& b : pool) total += b->inFlight();
    const auto cap = static_cast<int64_t>(std::ceil(1.25 * (total + 1) / 4.0));
    auto r = lb->pick(pool, keyed(hot));
    QCOMPARE(r.outcome, PickOutcome::kPicked);
    QVERIFY2(r.backend->inFlight() <= cap, r.backend->name().c_str());  // counted after acquire
    held.push_back(r.backend);
  }
  for (const auto& b : pool) QVERIFY(b->inFlight() <= 13);  // 1.25 * 40 / 4 = 12.5
  for (auto& b : held) b->release();
  // With no key: the least loaded backend.
  QVERIFY(pool[2]->tryAcquire());
  auto r = lb->pick(pool);
  QVERIFY(r.backend->name() != "b2");
  r.backend->release();
  pool[2]->release();
}

void PoliciesTest::prefixAffinityKeepsAGroupUntilItsLoadBound() {
  auto lb = make(v1::PREFIX_AFFINITY);
  auto pool = makePool(4);
  std::vector<uint64_t> group = {11, 22, 33, 44, 55, 66, 77, 88};  // chained block hashes of one system prompt
  balance::PickContext ctx;
  ctx.prefix_blocks = group;
  auto first = lb->pick(pool, ctx);
  const std::string home = first.backend->name();
  first.backend->release();
  auto got = spread(*lb, pool, 20, ctx);
  QCOMPARE(got[home], 20);  // all back to the backend that holds the prefix
  // A request sharing only the first half still prefers it.
  std::vector<uint64_t> half = {11, 22, 33, 44, 1001, 1002, 1003, 1004};
  balance::PickContext hctx;
  hctx.prefix_blocks = half;
  auto r = lb->pick(pool, hctx);
  QCOMPARE(r.backend->name(), home);
  r.backend->release();
  // Held requests pile up on home only to the bounded-load cap (load
  // factor 2 by default for this policy: 3x the mean, plus one), then spill.
  std::vector<upstream::BackendPtr> held;
  for (int i = 0; i < 12; ++i) {
    int64_t total = 0;
    for (const auto& b : pool) total += b->inFlight();
    const auto cap = static_cast<int64_t>(std::ceil(3.0 * static_cast<double>(total + 1) / 4.0));
    auto p = lb->pick(pool, ctx);
    QCOMPARE(p.outcome, PickOutcome::kPicked);
    QVERIFY2(p.backend->inFlight() - 1 < cap, p.backend->name().c_str());  // it was under the cap when picked
    held.push_back(p.backend);
  }
  int at_home = 0;
  for (const auto& b : held) at_home += b->name() == home;
  QVERIFY2(at_home >= 3 && at_home < 12, std::to_string(at_home).c_str());
  for (auto& b : held) b->release();
}

void PoliciesTest::prefixAffinitySpreadsDifferentGroups() {
  auto lb = make(v1::PREFIX_AFFINITY);
  auto pool = makePool(4);
  // Eight groups arriving while earlier ones are still in flight: load
  // decides the first placement, affinity keeps it.
  std::vector<std::vector<uint64_t>> groups;
  for (uint64_t g = 0; g < 8; ++g) groups.push_back({g * 100 + 1, g * 100 + 2, g * 100 + 3});
  std::vector<upstream::BackendPtr> held;
  std::map<int, std::string> home;
  for (int g = 0; g < 8; ++g) {
    balance::PickContext ctx;
    ctx.prefix_blocks = groups[g];
    auto r = lb->pick(pool, ctx);
    home[g] = r.backend->name();
    held.push_back(r.backend);
  }
  for (const auto& b : pool) QCOMPARE(b->inFlight(), int64_t(2));
  for (auto& b : held) b->release();
  for (int g = 0; g < 8; ++g) {
    balance::PickContext ctx;
    ctx.prefix_blocks = groups[g];
    auto r = lb->pick(pool, ctx);
    QCOMPARE(r.backend->name(), home[g]);
    r.backend->release();
  }
}

void PoliciesTest::prefixIndexIsBounded() {
  v1::Balancing s;
  s.set_policy(v1::PREFIX_AFFINITY);
  s.set_prefix_index_entries(64);
  balance::PrefixAffinityBalancer lb(balance::effectiveBalancing(s, {}));
  auto pool = makePool(2);
  for (uint64_t i = 0; i < 1000; ++i) {
    std::vector<uint64_t> blocks = {i * 3 + 1, i * 3 + 2, i * 3 + 3};
    balance::PickContext ctx;
    ctx.prefix_blocks = blocks;
    auto r = lb.pick(pool, ctx);
    r.backend->release();
    QVERIFY(lb.indexedBlocks() <= 64);
  }
  QCOMPARE(lb.indexedBlocks(), size_t(64));
}

void PoliciesTest::everyPolicySkipsTriedBackends() {
  for (auto policy : {v1::ROUND_ROBIN, v1::WEIGHTED_RANDOM, v1::LATENCY_WEIGHTED, v1::LEAST_OUTSTANDING,
                      v1::CONSISTENT_HASH, v1::PREFIX_AFFINITY}) {
    auto lb = make(policy);
    auto pool = makePool(3);
    const upstream::Backend* skip[] = {pool[0].get(), pool[2].get()};
    balance::PickContext ctx = keyed(12345);
    ctx.skip = skip;
    auto got = spread(*lb, pool, 50, ctx);
    QVERIFY2(got["b1"] == 50, balance::policyName(policy).data());
    const upstream::Backend* all[] = {pool[0].get(), pool[1].get(), pool[2].get()};
    ctx.skip = all;
    QCOMPARE(lb->pick(pool, ctx).outcome, PickOutcome::kNoHealthyBackend);
  }
}

void PoliciesTest::unavailableBackendsAreNeverPicked() {
  for (auto policy : {v1::ROUND_ROBIN, v1::WEIGHTED_RANDOM, v1::LATENCY_WEIGHTED, v1::LEAST_OUTSTANDING,
                      v1::CONSISTENT_HASH, v1::PREFIX_AFFINITY}) {
    auto lb = make(policy);
    auto pool = makePool(4);
    pool[0]->setHealthy(false);
    pool[1]->setDraining(true);
    pool[2]->backOff(common::wallClockMs() + 60'000);
    QCOMPARE(pool[2]->state(), std::string_view("backing_off"));
    auto got = spread(*lb, pool, 40, keyed(7));
    QVERIFY2(got["b3"] == 40, balance::policyName(policy).data());
    pool[3]->eject(common::wallClockMs(), common::wallClockMs() + 60'000, 1);
    QCOMPARE(lb->pick(pool).outcome, PickOutcome::kNoHealthyBackend);
    // A back-off ends by itself when due (no tick needed).
    auto fresh = makeBackend("x");
    fresh->backOff(common::wallClockMs() - 1);
    QVERIFY(fresh->available());
  }
}

void PoliciesTest::effectiveSettingsLayerPoolOverUpstreamOverDefaults() {
  v1::Balancing upstream;
  upstream.set_policy(v1::CONSISTENT_HASH);
  upstream.set_header_name("x-tenant");
  v1::Balancing pool;
  pool.set_load_factor(0.5);
  auto eff = balance::effectiveBalancing(pool, upstream);
  QCOMPARE(eff.policy(), v1::CONSISTENT_HASH);
  QCOMPARE(eff.header_name(), std::string("x-tenant"));
  QCOMPARE(eff.load_factor(), 0.5);
  v1::Balancing pa;
  pa.set_policy(v1::PREFIX_AFFINITY);
  QCOMPARE(balance::effectiveBalancing(pa, {}).load_factor(), 2.0);
  QCOMPARE(balance::effectiveBalancing({}, upstream).load_factor(), 0.25);
  QCOMPARE(eff.cookie_name(), std::string("route"));
  QCOMPARE(eff.choices(), 2u);
  auto none = balance::effectiveBalancing({}, {});
  QCOMPARE(none.policy(), v1::LEAST_OUTSTANDING);
  QCOMPARE(balance::makeBalancer("nope").status().code(), absl::StatusCode::kInvalidArgument);
  QCOMPARE((*balance::makeBalancer("round_robin"))->name(), std::string_view("round_robin"));
}

QTEST_GUILESS_MAIN(PoliciesTest)
