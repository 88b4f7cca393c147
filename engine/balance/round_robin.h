// Smooth weighted round robin (nginx's algorithm): every pick adds each
// available backend's weight to its running score, takes the highest, and
// subtracts the total from the winner. Weights 5 and 5 alternate, 5 and 1
// interleave (AAABAA...), and the spread over any window follows the weights.
#pragma once

#include <vector>

#include "balance/balancer.h"
#include "common/mutex.h"

namespace spillway::balance {

class RoundRobinBalancer final : public Balancer {
 public:
  PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) override;
  std::string_view name() const override { return "round_robin"; }

 private:
  common::Mutex mu_;
  std::vector<int64_t> current_ ABSL_GUARDED_BY(mu_);  // running score per backend position
};

}  // namespace spillway::balance
