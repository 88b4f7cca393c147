// Builds the routing snapshot (pipeline/route_table.h) from config: each
// pool with its balancer, retry budget, queue, degradation level and slot
// source; the rate limiter; the stages every request passes through; the
// completion observers; the outlier detector. The one module above the
// policies (admission, cache, GPU placement): it knows them all so that
// nothing below it has to. A config apply builds a new table and the
// gateway swaps it in whole.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "admission/admission_queue.h"
#include "admission/rate_limit.h"
#include "metrics/registry.h"
#include "pipeline/route_table.h"
#include "observe/recorders.h"
#include "responses/response_owners.h"
#include "upstream/adaptive_limit.h"

namespace spillway::gpu {
struct Inventory;
class Placement;
}

namespace spillway::routing {

using pipeline::CompletionObserverPtr;
using pipeline::PoolRoute;
using pipeline::RouteTable;
using pipeline::StagePtr;

// What a table is built from besides the config.
struct RouteInputs {
  // Every backend of the config, in config order, resolved by the engine
  // (URLs, in-process simulators; unchanged ones reused from the table before).
  std::vector<upstream::BackendPtr> backends;
  // The table before, if any: pools' queues and degradation levels, and the
  // rate-limit buckets while `limits` is unchanged, carry over.
  const RouteTable* previous = nullptr;
  // The engine's response cache (used unless cache.disabled).
  std::shared_ptr<cache::ResponseCache> cache;
  // The GPU inventory placement reads (null: none).
  std::shared_ptr<const gpu::Inventory> inventory;
  metrics::Registry* registry = nullptr;  // the slot sources' metrics
  std::shared_ptr<upstream::BackendEvents> events;  // the outlier detector's
  // Which backend stores each Responses API response (the engine's; null:
  // no affinity).
  std::shared_ptr<responses::ResponseOwners> response_owners;
  // The engine's per-request recorders: the access log's writer (configured
  // from access_log), the usage ledger, the event ring.
  observe::Recorders recorders;
  // The replicas sharing the limits (the engine's; null: this one alone).
  std::shared_ptr<const upstream::FleetShare> fleet_share;
};

// The routing table for `config`; pool ids are taken from `next_id`.
absl::StatusOr<std::shared_ptr<RouteTable>> buildRouteTable(const v1::Config& config, RouteInputs inputs,
                                                             uint64_t& next_id);

// The stages, in the order a request meets them:
//   identify → authenticate → response_affinity → route → rate_limit →
//   cache → degrade → placement → affinity → cache_tiers → coalesce
// then the attempt loop with the pool's admission queue (docs/ARCHITECTURE.md
// shows the whole path). `limiter`
// holds the rate-limit buckets (handed on across applies that keep
// `limits`); rate_limit is left out when it limits nothing, cache when
// there is no cache.
std::vector<StagePtr> buildStages(const v1::Config& config, std::shared_ptr<admission::RateLimiter> limiter,
                                  std::shared_ptr<cache::ResponseCache> cache,
                                  std::shared_ptr<const gpu::Placement> placement = nullptr,
                                  std::shared_ptr<responses::ResponseOwners> response_owners = nullptr);

// Admission's settings from config, for the queues and learned limits the
// engine keeps across applies.
admission::QueueSettings queueSettings(const v1::Config& config);
upstream::AdaptiveLimit::Settings learnedLimitSettings(const v1::Config& config);

// A pool's route: its backends (resolved by the caller), the balancing
// policy from pool.balancing over upstream.balancing, and its retry budget.
absl::StatusOr<PoolRoute> buildPool(const v1::Config& config, const v1::Pool& pool,
                                    std::vector<upstream::BackendPtr> backends, uint64_t id);

// BackendFeedback, admission's feedback, usage per tenant (with a
// registry; into `recorders.usage` too), the event ring (with
// `recorders.events`), then the access log when access_log.path is set
// (`recorders.access_log`: the engine's writer).
std::vector<CompletionObserverPtr> buildObservers(const v1::Config& config, observe::Recorders recorders = {},
                                                  metrics::Registry* registry = nullptr);

std::unique_ptr<upstream::OutlierDetector> buildOutlierDetector(const v1::Config& config,
                                                                std::shared_ptr<upstream::BackendEvents> events);

}  // namespace spillway::routing
