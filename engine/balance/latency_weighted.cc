#include "balance/latency_weighted.h"

namespace spillway::balance {

double LatencyWeightedBalancer::dynamicWeight(const upstream::Backend& b) const {
  const double base = b.effectiveWeight();
  if (base <= 0) return 0;
  const double ms = b.ewmaMsPerToken();
  double w = base / (ms * 0.01 + 0.1);
  if (threshold_ms_ > 0 && ms > threshold_ms_) w *= keep_;
  return w;
}

PickResult LatencyWeightedBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  return drawWeighted(backends, ctx, random_, [this](const upstream::Backend& b) { return dynamicWeight(b); });
}

}  // namespace spillway::balance
