// Builds the request path's parts from config: the stages every request
// passes through, each pool's balancer and retry budget, the outlier
// detector. The engine calls these when it builds a routing snapshot, so a
// config apply replaces all of them at once with the routes.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "pipeline/route_table.h"

namespace spillway::pipeline {

// The stages, in the order a request meets them:
//   identify → route → affinity
// (the admission, cache and degradation issues insert theirs between route
// and affinity; docs/ARCHITECTURE.md shows the whole path).
std::vector<StagePtr> buildStages(const v1::Config& config);

// A pool's route: its backends (resolved by the caller), the balancing
// policy from pool.balancing over upstream.balancing, and its retry budget.
absl::StatusOr<PoolRoute> buildPool(const v1::Config& config, const v1::Pool& pool,
                                    std::vector<upstream::BackendPtr> backends, uint64_t id);

std::vector<CompletionObserverPtr> buildObservers(const v1::Config& config);

std::unique_ptr<upstream::OutlierDetector> buildOutlierDetector(const v1::Config& config,
                                                                std::shared_ptr<upstream::BackendEvents> events);

}  // namespace spillway::pipeline
