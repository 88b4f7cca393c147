#include "balance/balancer.h"

#include "balance/round_robin.h"
#include "common/strings.h"

namespace spillway::balance {

absl::StatusOr<BalancerPtr> makeBalancer(std::string_view policy) {
  if (policy.empty() || policy == "round_robin") return std::make_unique<RoundRobinBalancer>();
  return absl::InvalidArgumentError(common::strCat("unknown balancing policy \"", policy, "\""));
}

}  // namespace spillway::balance
