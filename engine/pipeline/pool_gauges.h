// The pools' balancing scores as a Prometheus gauge
// (spillway_backend_policy_score: each pool's policy's current score or
// weight for each of its backends), computed at each scrape from the
// current routing table. The registration unregisters it when destroyed.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "metrics/registry.h"

namespace spillway::pipeline {

struct RouteTable;
using CurrentRoutes = std::function<std::shared_ptr<const RouteTable>()>;

std::vector<metrics::Registry::Registration> registerPoolGauges(metrics::Registry& registry, CurrentRoutes routes);

}  // namespace spillway::pipeline
