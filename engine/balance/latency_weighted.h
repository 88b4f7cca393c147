// Latency-weighted random (the article's dynamic weights): each backend's
// weight is its configured weight times 1 / (ms_per_token * 0.01 + 0.1),
// where ms_per_token is the backend's EWMA of request latency per output
// token (so long answers do not make a backend look slow), and is cut by
// slow_cut_percent while that EWMA is above slow_threshold_ms (the article's
// NGINX+Lua rule). A backend with no samples yet counts as fastest, so new
// and recovered backends are tried.
#pragma once

#include "balance/balancer.h"
#include "balance/random.h"

namespace spillway::balance {

class LatencyWeightedBalancer final : public Balancer {
 public:
  LatencyWeightedBalancer(const v1::Balancing& settings, uint64_t seed)
      : threshold_ms_(settings.slow_threshold_ms()), keep_(1.0 - settings.slow_cut_percent() / 100.0),
        random_(seed) {}
  PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) override;
  double score(const upstream::Backend& b) const override { return dynamicWeight(b); }
  std::string_view name() const override { return "latency_weighted"; }

  // The weight this policy gives `b` now (0 when it is not available).
  double dynamicWeight(const upstream::Backend& b) const;

 private:
  const double threshold_ms_;
  const double keep_;  // share of the weight a slow backend keeps
  SharedRandom random_;
};

}  // namespace spillway::balance
