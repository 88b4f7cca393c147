#include "balance/weighted_random.h"

#include <vector>

namespace spillway::balance {

PickResult WeightedRandomBalancer::drawWeighted(std::span<const upstream::BackendPtr> backends,
                                                std::span<const double> weights, SharedRandom& random) {
  const size_t n = backends.size();
  double total = 0;
  for (double w : weights) total += w;
  if (total <= 0) return {};
  // A uniform point in [0, total): 53 random bits.
  double point = static_cast<double>(random.next() >> 11) * 0x1.0p-53 * total;
  size_t first = n;
  for (size_t i = 0; i < n; ++i) {
    if (weights[i] <= 0) continue;
    first = i;  // the last positive one absorbs rounding at the top end
    if (point < weights[i]) break;
    point -= weights[i];
  }
  bool any = false;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (first + k) % n;
    if (weights[i] <= 0) continue;
    any = true;
    if (backends[i]->tryAcquire()) return {PickOutcome::kPicked, backends[i], weights[i]};
  }
  return {any ? PickOutcome::kAllBusy : PickOutcome::kNoHealthyBackend, nullptr, 0};
}

PickResult WeightedRandomBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  double buf[64];
  std::vector<double> heap;
  double* w = buf;
  if (backends.size() > std::size(buf)) {
    heap.resize(backends.size());
    w = heap.data();
  }
  for (size_t i = 0; i < backends.size(); ++i) {
    w[i] = eligible(*backends[i], ctx) ? static_cast<double>(backends[i]->effectiveWeight()) : 0.0;
  }
  return drawWeighted(backends, std::span<const double>(w, backends.size()), random_);
}

}  // namespace spillway::balance
