#include "balance/round_robin.h"

namespace spillway::balance {

// Weighted round robin without locks: a shared counter walks the sum of the
// available backends' weights, and each slot maps to the backend whose
// cumulative weight range holds it (weights 3 and 1 give A A A B). Equal
// weights reduce to plain round robin. When the chosen backend is at its
// concurrency limit the next ones with weight are tried in order.
PickResult RoundRobinBalancer::pick(std::span<const upstream::BackendPtr> backends) {
  PickResult r;
  const size_t n = backends.size();
  if (n == 0) return r;
  uint64_t total = 0;
  for (const auto& b : backends) total += b->effectiveWeight();
  // Nobody available, or every available backend has weight 0.
  if (total == 0) return r;
  uint64_t slot = next_.fetch_add(1, std::memory_order_relaxed) % total;
  size_t first = 0;
  for (; first < n; ++first) {
    const auto& b = backends[first];
    const uint64_t w = b->effectiveWeight();
    if (slot < w) break;
    slot -= w;
  }
  for (size_t i = 0; i < n; ++i) {
    const auto& b = backends[(first + i) % n];
    if (b->effectiveWeight() == 0) continue;
    if (b->tryAcquire()) {
      r.outcome = PickOutcome::kPicked;
      r.backend = b;
      return r;
    }
  }
  r.outcome = PickOutcome::kAllBusy;
  return r;
}

}  // namespace spillway::balance
