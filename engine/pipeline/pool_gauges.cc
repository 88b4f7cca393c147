#include "pipeline/pool_gauges.h"

#include "pipeline/route_table.h"

namespace spillway::pipeline {

std::vector<metrics::Registry::Registration> registerPoolGauges(metrics::Registry& registry, CurrentRoutes routes) {
  std::vector<metrics::Registry::Registration> regs;
  regs.push_back(registry.scopedCallbackGauge("spillway_backend_policy_score",
                         "The pool's balancing policy's current score or weight for each backend (policies that have "
                         "one: latency_weighted's dynamic weight, least_outstanding's weight/(active+1)^bias).",
                         {"model", "backend", "policy"}, [routes] {
                           std::vector<std::pair<metrics::Labels, double>> out;
                           auto table = routes();
                           for (const auto& [model, pool] : table->pools) {
                             for (const auto& b : pool.backends) {
                               out.push_back({{model, b->name(), std::string(pool.balancer->name())},
                                              pool.balancer->score(*b)});
                             }
                           }
                           return out;
                         }));
  return regs;
}

}  // namespace spillway::pipeline
