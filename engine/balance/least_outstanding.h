// Least outstanding requests by the power of `choices` random choices
// (default two; pools of up to four backends compare all of them): sample
// that many distinct available backends, score each
// weight / (in_flight + 1)^bias (Envoy's least-request rule) and take the
// best. The in-flight count is Spillway's own, so it is exact and current;
// a slow backend holds its requests longer and so draws fewer new ones. A
// backend failing in a row has its score divided by (1 + failures), so one
// that fails fast (and so looks idle) does not draw the traffic.
#pragma once

#include "balance/balancer.h"
#include "balance/random.h"

namespace spillway::balance {

class LeastOutstandingBalancer final : public Balancer {
 public:
  LeastOutstandingBalancer(const v1::Balancing& settings, uint64_t seed)
      : choices_(settings.choices()), bias_(settings.active_request_bias()), random_(seed) {}
  PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) override;
  double score(const upstream::Backend& b) const override;
  std::string_view name() const override { return "least_outstanding"; }

  // Pools this small compare every available backend, whatever `choices`.
  static constexpr size_t kCompareAllUpTo = 4;

 private:
  const uint32_t choices_;
  const double bias_;
  SharedRandom random_;
};

}  // namespace spillway::balance
