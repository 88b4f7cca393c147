#include "balance/round_robin.h"

namespace spillway::balance {

PickResult RoundRobinBalancer::pick(std::span<const upstream::BackendPtr> backends) {
  PickResult r;
  const size_t n = backends.size();
  if (n == 0) return r;
  const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
  bool any_healthy = false;
  for (size_t i = 0; i < n; ++i) {
    const auto& b = backends[(start + i) % n];
    if (!b->available()) continue;
    any_healthy = true;
    if (b->tryAcquire()) {
      r.outcome = PickOutcome::kPicked;
      r.backend = b;
      return r;
    }
  }
  r.outcome = any_healthy ? PickOutcome::kAllBusy : PickOutcome::kNoHealthyBackend;
  return r;
}

}  // namespace spillway::balance
