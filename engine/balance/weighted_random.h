// Weighted random (the article's balancer): each pick draws a backend with
// probability proportional to its weight. Stateless apart from the random
// source, so it scales across workers without contention.
#pragma once

#include "balance/balancer.h"
#include "balance/random.h"

namespace spillway::balance {

class WeightedRandomBalancer final : public Balancer {
 public:
  explicit WeightedRandomBalancer(uint64_t seed) : random_(seed) {}
  PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) override;
  std::string_view name() const override { return "weighted_random"; }

 private:
  SharedRandom random_;
};

}  // namespace spillway::balance
