#include "control/pool_policy.h"

#include "common/strings.h"

namespace spillway::control {

absl::StatusOr<v1::ApplyConfigRequest> poolPolicyChange(EngineClient& client, const std::string& model,
                                                        const std::string& policy) {
  v1::BalancingPolicy p;
  if (!v1::BalancingPolicy_Parse(common::toUpper(policy), &p) || p == v1::BALANCING_POLICY_UNSPECIFIED) {
    return absl::InvalidArgumentError(common::strCat(
        "unknown policy \"", policy,
        "\" (round_robin, weighted_random, latency_weighted, least_outstanding, consistent_hash, prefix_affinity)"));
  }
  auto view = client.getConfig();
  if (!view.ok()) return view.status();
  v1::ApplyConfigRequest req;
  *req.mutable_source()->mutable_config() = view->config();
  v1::Pool* pool = nullptr;
  for (auto& candidate : *req.mutable_source()->mutable_config()->mutable_pools()) {
    if (candidate.model() == model) pool = &candidate;
  }
  if (!pool) return absl::NotFoundError(common::strCat("no pool serves model \"", model, "\""));
  pool->mutable_balancing()->set_policy(p);
  req.set_comment(common::strCat("balance ", model, " ", policy));
  req.set_base_version(view->version());
  return req;
}

}  // namespace spillway::control
