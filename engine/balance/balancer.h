// Balancing policies behind one interface. A policy picks one backend of a
// pool for a request; the pool, not the policy, owns the backends.
//
// Contract: pick() and onComplete() are called concurrently from every
// worker thread, so implementations keep their state in atomics, behind a
// short lock, or per thread. A returned backend has had tryAcquire()
// succeed: the caller must release() it. "No backend" is an outcome (all
// down, or all at max_concurrency), not an error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "balance/random.h"
#include "spillway/v1/config.pb.h"
#include "upstream/backend.h"

namespace spillway::balance {

enum class PickOutcome {
  kPicked,
  kNoHealthyBackend,  // every backend is down, drained, ejected or backing off
  kAllBusy,           // available ones exist but all are at max_concurrency
};

struct PickResult {
  PickOutcome outcome = PickOutcome::kNoHealthyBackend;
  upstream::BackendPtr backend;  // set when kPicked
  double score = 0;              // the policy's score for the winner, when it has one
};

// What a pick may use besides the backends. Every field is optional: a
// policy that needs a key it was not given falls back to its load signal.
struct PickContext {
  // Affinity key (consistent_hash): a hash of the cookie, header, user or
  // client address the pool hashes on; `has_hash_key` false when absent.
  uint64_t hash_key = 0;
  bool has_hash_key = false;
  // Chained hashes of the prompt prefix in fixed-size blocks (block i's hash
  // covers blocks 0..i), for prefix_affinity.
  std::span<const uint64_t> prefix_blocks;
  // Backends already tried for this request (failover): never picked again.
  std::span<const upstream::Backend* const> skip;
  // GPU placement (gpu/placement): when not empty, only these backends.
  std::span<const upstream::Backend* const> only;
};

// How a request ended, for policies that learn from outcomes.
struct Completion {
  const upstream::Backend* backend = nullptr;
  double seconds = 0;
  uint32_t output_tokens = 0;
  bool failed = false;
};

// What a policy needs the request path to compute for it (so requests to
// pools that need nothing pay nothing).
struct Needs {
  bool hash_key = false;      // fill PickContext::hash_key from `key`
  v1::HashKey key = v1::CHAIN;
  std::string header_name;    // HEADER and CHAIN
  std::string cookie_name;    // COOKIE and CHAIN
  bool prefix_blocks = false;  // fill PickContext::prefix_blocks
  uint32_t prefix_block_bytes = 256;
};

class Balancer {
 public:
  virtual ~Balancer() = default;
  // Picks among `backends` (the pool, in config order; the same span on
  // every call for one balancer).
  virtual PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) = 0;
  // Feedback when a request that this policy placed ends. Default: nothing.
  virtual void onComplete(const Completion&) {}
  // A per-backend figure for operators (the policy's current score or
  // weight for it); 0 where the policy has none.
  virtual double score(const upstream::Backend&) const { return 0; }
  virtual std::string_view name() const = 0;
  virtual Needs needs() const { return {}; }

  PickResult pick(std::span<const upstream::BackendPtr> backends) { return pick(backends, PickContext{}); }
};

using BalancerPtr = std::unique_ptr<Balancer>;

// The policy's name as config spells it ("least_outstanding").
std::string_view policyName(v1::BalancingPolicy policy);

// `settings` with unset fields filled from `defaults`, then from the
// built-in defaults (docs/config.md): what a pool actually runs.
v1::Balancing effectiveBalancing(const v1::Balancing& pool, const v1::Balancing& defaults);

// Creates the policy `settings` names (fields already effective), with
// `seed` for the ones that draw random numbers (tests fix it).
absl::StatusOr<BalancerPtr> makeBalancer(const v1::Balancing& settings, uint64_t seed = 0);
// Shorthand with built-in defaults, by name ("round_robin", ...).
absl::StatusOr<BalancerPtr> makeBalancer(std::string_view policy, uint64_t seed = 0);

// Picks the first backend that accepts in `order` (indexes into backends),
// skipping unavailable and skipped ones: the shared tail of every policy.
PickResult acquireInOrder(std::span<const upstream::BackendPtr> backends, std::span<const size_t> order,
                          const PickContext& ctx);
// Whether `b` may be considered at all (available, weight > 0, not skipped).
bool eligible(const upstream::Backend& b, const PickContext& ctx);

// The bounded-load cap of consistent hashing with bounded loads: no eligible
// backend should hold more than ceil((1 + load_factor) * (total load + 1) /
// eligible backends). 0 when no backend is eligible.
int64_t boundedLoadCap(std::span<const upstream::BackendPtr> backends, const PickContext& ctx, double load_factor);

// Draws among `backends` with probability proportional to weight(backend)
// (eligible ones only; weight 0 = never), then takes the first that accepts
// from the drawn one on. Weighted random and latency-weighted share it.
PickResult drawWeighted(std::span<const upstream::BackendPtr> backends, const PickContext& ctx,
                        SharedRandom& random, const std::function<double(const upstream::Backend&)>& weight);

}  // namespace spillway::balance
