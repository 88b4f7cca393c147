// Builds the request path's parts from config: the stages every request
// passes through, each pool's balancer and retry budget, the outlier
// detector. The engine calls these when it builds a routing snapshot, so a
// config apply replaces all of them at once with the routes.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "admission/rate_limit.h"
#include "pipeline/route_table.h"

namespace spillway::gpu {
class Placement;
}

namespace spillway::pipeline {

// The stages, in the order a request meets them:
//   identify → authenticate → route → rate_limit → cache → degrade →
//   placement → affinity → cache_tiers → coalesce
// then the attempt loop with the pool's admission queue (docs/ARCHITECTURE.md
// shows the whole path). `limiter`
// holds the rate-limit buckets (handed on across applies that keep
// `limits`); rate_limit is left out when it limits nothing, cache when
// there is no cache.
std::vector<StagePtr> buildStages(const v1::Config& config, std::shared_ptr<admission::RateLimiter> limiter,
                                  std::shared_ptr<cache::ResponseCache> cache,
                                  std::shared_ptr<const gpu::Placement> placement = nullptr);

// Admission's settings from config, for the queues and learned limits the
// engine keeps across applies.
admission::QueueSettings queueSettings(const v1::Config& config);
upstream::AdaptiveLimit::Settings learnedLimitSettings(const v1::Config& config);

// A pool's route: its backends (resolved by the caller), the balancing
// policy from pool.balancing over upstream.balancing, and its retry budget.
absl::StatusOr<PoolRoute> buildPool(const v1::Config& config, const v1::Pool& pool,
                                    std::vector<upstream::BackendPtr> backends, uint64_t id);

std::vector<CompletionObserverPtr> buildObservers(const v1::Config& config);

std::unique_ptr<upstream::OutlierDetector> buildOutlierDetector(const v1::Config& config,
                                                                std::shared_ptr<upstream::BackendEvents> events);

}  // namespace spillway::pipeline
