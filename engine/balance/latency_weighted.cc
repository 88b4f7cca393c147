#include "balance/latency_weighted.h"

#include <vector>

#include "balance/weighted_random.h"

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
  double buf[64];
  std::vector<double> heap;
  double* w = buf;
  if (backends.size() > std::size(buf)) {
    heap.resize(backends.size());
    w = heap.data();
  }
  for (size_t i = 0; i < backends.size(); ++i) w[i] = eligible(*backends[i], ctx) ? dynamicWeight(*backends[i]) : 0.0;
  return WeightedRandomBalancer::drawWeighted(backends, std::span<const double>(w, backends.size()), random_);
}

}  // namespace spillway::balance
