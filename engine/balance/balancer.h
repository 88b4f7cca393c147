// Balancing policies behind one interface. A policy picks one backend of a
// pool for a request; the pool, not the policy, owns the backends.
//
// Contract: pick() is called concurrently from every worker thread, so
// implementations keep their state in atomics or per-thread. A returned
// backend has had tryAcquire() succeed: the caller must release() it. "No
// backend" is an outcome (all down, or all at max_concurrency), not an error.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "upstream/backend.h"

namespace spillway::balance {

enum class PickOutcome {
  kPicked,
  kNoHealthyBackend,  // every backend is down (or drained)
  kAllBusy,           // healthy ones exist but all are at max_concurrency
};

struct PickResult {
  PickOutcome outcome = PickOutcome::kNoHealthyBackend;
  upstream::BackendPtr backend;  // set when kPicked
};

class Balancer {
 public:
  virtual ~Balancer() = default;
  // Picks among `backends` (a pool, in config order).
  virtual PickResult pick(std::span<const upstream::BackendPtr> backends) = 0;
  virtual std::string_view name() const = 0;
};

using BalancerPtr = std::unique_ptr<Balancer>;

// Creates the named policy ("round_robin"; later issues add more).
absl::StatusOr<BalancerPtr> makeBalancer(std::string_view policy);

}  // namespace spillway::balance
