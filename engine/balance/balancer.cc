#include "balance/balancer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "balance/consistent_hash.h"
#include "balance/latency_weighted.h"
#include "balance/least_outstanding.h"
#include "balance/prefix_affinity.h"
#include "balance/round_robin.h"
#include "balance/weighted_random.h"
#include "common/strings.h"

#include <boost/container/small_vector.hpp>

namespace spillway::balance {

std::string_view policyName(v1::BalancingPolicy policy) {
  switch (policy) {
    case v1::ROUND_ROBIN: return "round_robin";
    case v1::WEIGHTED_RANDOM: return "weighted_random";
    case v1::LATENCY_WEIGHTED: return "latency_weighted";
    case v1::CONSISTENT_HASH: return "consistent_hash";
    case v1::PREFIX_AFFINITY: return "prefix_affinity";
    case v1::LEAST_OUTSTANDING:
    default: return "least_outstanding";
  }
}

v1::Balancing effectiveBalancing(const v1::Balancing& pool, const v1::Balancing& defaults) {
  // Unset (zero) fields of the pool take the upstream's, then the built-in
  // defaults documented in config.proto.
  v1::Balancing out = defaults;
  out.MergeFrom(pool);  // proto3 merge copies only the pool's non-zero fields
  if (out.policy() == v1::BALANCING_POLICY_UNSPECIFIED) out.set_policy(v1::LEAST_OUTSTANDING);
  if (out.slow_threshold_ms() == 0) out.set_slow_threshold_ms(100);
  if (out.slow_cut_percent() == 0) out.set_slow_cut_percent(60);
  if (out.choices() == 0) out.set_choices(2);
  if (out.active_request_bias() == 0) out.set_active_request_bias(1.0);
  if (out.hash_key() == v1::HASH_KEY_UNSPECIFIED) out.set_hash_key(v1::CHAIN);
  if (out.cookie_name().empty()) out.set_cookie_name("route");
  if (out.header_name().empty()) out.set_header_name("x-session-id");
  // Prefix affinity's load score already spreads requests; a tight cap at
  // the small in-flight counts of LLM serving breaks the affinity itself
  // (measured: 49 % of prompt tokens cached at 0.25, 98 % at 2).
  if (out.load_factor() == 0) out.set_load_factor(out.policy() == v1::PREFIX_AFFINITY ? 2.0 : 0.25);
  if (out.prefix_weight() == 0) out.set_prefix_weight(3);
  if (out.load_weight() == 0) out.set_load_weight(2);
  if (out.prefix_block_bytes() == 0) out.set_prefix_block_bytes(256);
  if (out.prefix_index_entries() == 0) out.set_prefix_index_entries(65536);
  return out;
}

absl::StatusOr<BalancerPtr> makeBalancer(const v1::Balancing& s, uint64_t seed) {
  switch (s.policy()) {
    case v1::ROUND_ROBIN: return std::make_unique<RoundRobinBalancer>();
    case v1::WEIGHTED_RANDOM: return std::make_unique<WeightedRandomBalancer>(seed);
    case v1::LATENCY_WEIGHTED: return std::make_unique<LatencyWeightedBalancer>(s, seed);
    case v1::BALANCING_POLICY_UNSPECIFIED:
    case v1::LEAST_OUTSTANDING: return std::make_unique<LeastOutstandingBalancer>(s, seed);
    case v1::CONSISTENT_HASH: return std::make_unique<ConsistentHashBalancer>(s);
    case v1::PREFIX_AFFINITY: return std::make_unique<PrefixAffinityBalancer>(s);
    default: break;
  }
  return absl::InvalidArgumentError(common::strCat("unknown balancing policy ", static_cast<int>(s.policy())));
}

absl::StatusOr<BalancerPtr> makeBalancer(std::string_view policy, uint64_t seed) {
  v1::BalancingPolicy p;
  const std::string upper = common::toUpper(policy.empty() ? std::string_view("least_outstanding") : policy);
  if (!v1::BalancingPolicy_Parse(upper, &p) || p == v1::BALANCING_POLICY_UNSPECIFIED) {
    return absl::InvalidArgumentError(common::strCat("unknown balancing policy \"", policy, "\""));
  }
  v1::Balancing s;
  s.set_policy(p);
  return makeBalancer(effectiveBalancing(s, {}), seed);
}

bool eligible(const upstream::Backend& b, const PickContext& ctx) {
  if (b.effectiveWeight() == 0) return false;
  if (!ctx.only.empty() && std::find(ctx.only.begin(), ctx.only.end(), &b) == ctx.only.end()) return false;
  return std::find(ctx.skip.begin(), ctx.skip.end(), &b) == ctx.skip.end();
}

int64_t boundedLoadCap(std::span<const upstream::BackendPtr> backends, const PickContext& ctx, double load_factor) {
  size_t available = 0;
  int64_t total = 0;
  for (const auto& b : backends) {
    if (!eligible(*b, ctx)) continue;
    ++available;
    total += b->load();
  }
  if (available == 0) return 0;
  return static_cast<int64_t>(
      std::ceil((1.0 + load_factor) * static_cast<double>(total + 1) / static_cast<double>(available)));
}

PickResult drawWeighted(std::span<const upstream::BackendPtr> backends, const PickContext& ctx, SharedRandom& random,
                        const std::function<double(const upstream::Backend&)>& weight) {
  const size_t n = backends.size();
  boost::container::small_vector<double, 64> w(n);  // on the stack for pools up to 64
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    w[i] = eligible(*backends[i], ctx) ? weight(*backends[i]) : 0.0;
    total += w[i];
  }
  if (total <= 0) return {};
  // A uniform point in [0, total): 53 random bits.
  double point = static_cast<double>(random.next() >> 11) * 0x1.0p-53 * total;
  size_t first = n;
  for (size_t i = 0; i < n; ++i) {
    if (w[i] <= 0) continue;
    first = i;  // the last positive one absorbs rounding at the top end
    if (point < w[i]) break;
    point -= w[i];
  }
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (first + k) % n;
    if (w[i] > 0 && backends[i]->tryAcquire()) return {PickOutcome::kPicked, backends[i], w[i]};
  }
  return {PickOutcome::kAllBusy, nullptr, 0};
}

PickResult acquireInOrder(std::span<const upstream::BackendPtr> backends, std::span<const size_t> order,
                          const PickContext& ctx) {
  bool any = false;
  for (size_t i : order) {
    const auto& b = backends[i];
    if (!eligible(*b, ctx)) continue;
    any = true;
    if (b->tryAcquire()) return {PickOutcome::kPicked, b, 0};
  }
  return {any ? PickOutcome::kAllBusy : PickOutcome::kNoHealthyBackend, nullptr, 0};
}

}  // namespace spillway::balance
