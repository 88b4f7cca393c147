#include "balance/weighted_random.h"

namespace spillway::balance {

PickResult WeightedRandomBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  return drawWeighted(backends, ctx, random_, [](const upstream::Backend& b) {
    return static_cast<double>(b.effectiveWeight());
  });
}

}  // namespace spillway::balance
