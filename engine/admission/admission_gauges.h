// Admission's gauges, computed at each scrape from the current routing
// table: queue depth by model and class, the degradation level by pool, and
// the shared rate limiter's Redis state and local fallbacks. The
// registrations unregister the families when destroyed.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "metrics/registry.h"

namespace spillway::pipeline {
struct RouteTable;
}

namespace spillway::admission {

using CurrentRoutes = std::function<std::shared_ptr<const pipeline::RouteTable>()>;

std::vector<metrics::Registry::Registration> registerAdmissionGauges(metrics::Registry& registry, CurrentRoutes routes);

}  // namespace spillway::admission
