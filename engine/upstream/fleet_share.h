// How many gateway replicas share the backends and the limits now: the
// fleet registry (fleet/registry) sets it from the replicas live in Redis;
// backends divide their configured concurrency by it, and the rate limiter
// takes this replica's share of each limit while Redis cannot decide. One
// per engine; 1 for an engine on its own. Lock-free.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace spillway::upstream {

class FleetShare {
 public:
  uint32_t replicas() const { return replicas_.load(std::memory_order_relaxed); }
  void setReplicas(uint32_t n) { replicas_.store(std::max<uint32_t>(1, n), std::memory_order_relaxed); }
  // This replica's slice of a fleet-wide `limit`: rounded up, so the
  // replicas together never get less than the limit (and each at least 1).
  int64_t slice(int64_t limit) const {
    const int64_t n = replicas();
    return limit <= 0 ? limit : std::max<int64_t>(1, (limit + n - 1) / n);
  }

 private:
  std::atomic<uint32_t> replicas_{1};
};

}  // namespace spillway::upstream
