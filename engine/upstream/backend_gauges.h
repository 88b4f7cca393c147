// Each backend's state and load as Prometheus gauges (spillway_backend_*,
// spillway_upstream_connections), computed at each scrape from the backends
// `backends` returns then — so backends appear and disappear with config
// applies. The registrations unregister the families when destroyed.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "metrics/registry.h"
#include "upstream/backend.h"

namespace spillway::upstream {

// The backends now (a view kept alive with whatever owns them).
using BackendList = std::function<std::shared_ptr<const std::vector<BackendPtr>>()>;

std::vector<metrics::Registry::Registration> registerBackendGauges(metrics::Registry& registry, BackendList backends);

}  // namespace spillway::upstream
