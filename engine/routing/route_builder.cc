#include "routing/route_builder.h"

#include "admission/authenticate.h"
#include "admission/degradation.h"
#include "admission/feedback.h"
#include "admission/rate_limit.h"
#include "admission/slot_source.h"
#include "cache/cache_stage.h"
#include "cache/coalesce_stage.h"
#include "cache/response_cache.h"
#include "cache/slow_tier_stage.h"
#include "gpu/inventory.h"
#include "gpu/placement.h"
#include "pipeline/affinity.h"
#include "pipeline/identify.h"
#include "pipeline/route_stage.h"
#include "observe/tenant_usage.h"
#include "responses/response_affinity.h"

namespace spillway::routing {

using pipeline::AffinityStage;
using pipeline::BackendFeedback;
using pipeline::IdentifyStage;
using pipeline::RetryBudget;
using pipeline::RouteStage;

std::vector<StagePtr> buildStages(const v1::Config& config, std::shared_ptr<admission::RateLimiter> limiter,
                                  std::shared_ptr<cache::ResponseCache> cache,
                                  std::shared_ptr<const gpu::Placement> placement,
                                  std::shared_ptr<responses::ResponseOwners> response_owners) {
  std::vector<StagePtr> stages;
  stages.push_back(std::make_unique<IdentifyStage>());
  stages.push_back(std::make_unique<admission::AuthenticateStage>(config));
  if (response_owners) {
    stages.push_back(std::make_unique<responses::ResponseAffinityStage>(std::move(response_owners)));
  }
  stages.push_back(std::make_unique<RouteStage>());
  if (limiter && !limiter->empty()) stages.push_back(std::make_unique<admission::RateLimitStage>(std::move(limiter)));
  if (cache) stages.push_back(std::make_unique<cache::CacheStage>(cache, cache::settingsFrom(config.cache())));
  stages.push_back(std::make_unique<admission::DegradeStage>(config));
  if (placement) stages.push_back(std::make_unique<gpu::PlacementStage>(std::move(placement)));
  stages.push_back(std::make_unique<AffinityStage>());
  // The cache's stages that wait: its slower tiers, then coalescing (last,
  // so a request that leads a flight goes straight to the attempt loop).
  if (cache) {
    if (cache->hasSlowTiers()) stages.push_back(std::make_unique<cache::SlowTierStage>(cache));
    stages.push_back(std::make_unique<cache::CoalesceStage>(std::move(cache)));
  }
  return stages;
}

std::vector<CompletionObserverPtr> buildObservers(const v1::Config& config, observe::Recorders recorders,
                                                  metrics::Registry* registry) {
  std::vector<CompletionObserverPtr> observers;
  observers.push_back(std::make_unique<BackendFeedback>());
  observers.push_back(std::make_unique<admission::AdmissionFeedback>());
  if (registry) {
    observers.push_back(std::make_unique<observe::TenantUsageObserver>(*registry, std::move(recorders.usage)));
  }
  if (recorders.events) observers.push_back(std::make_unique<observe::RequestEventsObserver>(std::move(recorders.events)));
  auto& log = recorders.access_log;
  const auto& al = config.access_log();
  if (log) log->configure(al.path(), al.max_queued_lines());
  if (log && !al.path().empty()) {
    observers.push_back(std::make_unique<observe::AccessLogObserver>(
        std::move(log), observe::AccessLogFormat{al.format() != "text", al.sample_successes()}));
  }
  return observers;
}

admission::QueueSettings queueSettings(const v1::Config& config) {
  const auto& a = config.admission();
  admission::QueueSettings q;
  q.max_queue = a.max_queue();
  q.timeout = {std::chrono::milliseconds(a.critical().queue_timeout_ms()),
               std::chrono::milliseconds(a.standard().queue_timeout_ms()),
               std::chrono::milliseconds(a.sheddable().queue_timeout_ms())};
  q.input_weight = a.input_token_weight();
  q.output_weight = a.output_token_weight();
  q.shortest_first = a.queue_order() != "fifo";
  q.aging = std::chrono::milliseconds(a.aging_ms());
  q.objective = {std::chrono::milliseconds(a.critical().objective_ms()),
                 std::chrono::milliseconds(a.standard().objective_ms()),
                 std::chrono::milliseconds(a.sheddable().objective_ms())};
  return q;
}

upstream::AdaptiveLimit::Settings learnedLimitSettings(const v1::Config& config) {
  const auto& l = config.admission().learned_limit();
  return {l.initial(), l.min(), l.max(), l.latency_tolerance(), l.backoff_ratio()};
}

absl::StatusOr<PoolRoute> buildPool(const v1::Config& config, const v1::Pool& pool,
                                    std::vector<upstream::BackendPtr> backends, uint64_t id) {
  PoolRoute route;
  route.id = id;
  route.model = pool.model();
  route.backends = std::move(backends);
  route.balancing = balance::effectiveBalancing(pool.balancing(), config.upstream().balancing());
  if (!pool.priority().empty()) route.priority = admission::parsePriority(pool.priority());
  route.owned_by = pool.owned_by().empty() ? "spillway" : pool.owned_by();
  for (const auto& name : pool.endpoints()) {
    if (auto e = openai::endpointByName(name)) route.endpoints.push_back(*e);
  }
  if (route.endpoints.empty()) {
    route.endpoints = {openai::Endpoint::kChatCompletions, openai::Endpoint::kCompletions, openai::Endpoint::kEmbeddings,
                       openai::Endpoint::kResponses, openai::Endpoint::kPassthrough};
  }
  auto balancer = balance::makeBalancer(route.balancing, /*seed=*/id * 0x9e3779b97f4a7c15ull);
  if (!balancer.ok()) return balancer.status();
  route.balancer = std::move(*balancer);
  route.needs = route.balancer->needs();
  const auto& retry = config.upstream().retry();
  route.retry_budget = std::make_unique<RetryBudget>(retry.budget_percent(), retry.min_retries());
  return route;
}

std::unique_ptr<upstream::OutlierDetector> buildOutlierDetector(const v1::Config& config,
                                                                std::shared_ptr<upstream::BackendEvents> events) {
  const auto& u = config.upstream();
  auto d = std::make_unique<upstream::OutlierDetector>(u.outlier_detection(), u.slow_start_ms(), u.busy_cooldown_ms(),
                                                       std::move(events));
  d->setBusyBackOffUncapped(!config.admission().disabled());
  return d;
}

absl::StatusOr<std::shared_ptr<RouteTable>> buildRouteTable(const v1::Config& cfg, RouteInputs in, uint64_t& next_id) {
  auto routes = std::make_shared<RouteTable>();
  routes->config = cfg;
  routes->retry_after_text = std::to_string(cfg.server().retry_after_seconds());
  routes->backends = std::move(in.backends);
  routes->served_routes = "GET /v1/models, POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, "
                          "GET/DELETE /v1/responses/{id}";
  for (const auto& r : cfg.api().passthrough_routes()) {
    routes->passthrough.insert(r);
    routes->served_routes += ", POST " + r;
  }
  std::map<std::string, upstream::BackendPtr> by_name;
  for (const auto& b : routes->backends) by_name[b->name()] = b;
  const RouteTable* old = in.previous;
  for (const auto& p : cfg.pools()) {
    std::vector<upstream::BackendPtr> members;
    for (const auto& name : p.backends()) members.push_back(by_name.at(name));
    auto route = buildPool(cfg, p, std::move(members), next_id++);
    if (!route.ok()) return route.status();
    // The pool's queue and degradation level carry over from the table
    // before (waiters and pins survive an apply).
    const PoolRoute* before = old ? old->find(p.model()) : nullptr;
    if (!cfg.admission().disabled()) {
      route->queue = before && before->queue ? before->queue : std::make_shared<admission::AdmissionQueue>();
      auto settings = queueSettings(cfg);
      const std::string& order = p.queue_order().empty() ? cfg.admission().queue_order() : p.queue_order();
      settings.shortest_first = order != "fifo";
      route->queue->configure(settings);
    }
    route->degradation =
        before && before->degradation ? before->degradation : std::make_shared<admission::PoolDegradation>();
    route->slot_source = admission::makeSlotSource(*route, cfg, *in.registry);
    routes->pools.emplace(p.model(), std::move(*route));
  }
  // Learned limits: on with admission, for backends without max_concurrency.
  for (const auto& b : routes->backends) {
    b->adaptiveLimit().configure(learnedLimitSettings(cfg));
    b->setLearning(!cfg.admission().disabled());
  }
  // Rate-limit buckets carry over while `limits` stays the same.
  if (old && old->limiter && old->limiter->limits().SerializeAsString() == cfg.limits().SerializeAsString()) {
    routes->limiter = old->limiter;
  } else {
    routes->limiter = std::make_shared<admission::RateLimiter>(cfg.limits(), in.fleet_share);
  }
  if (!cfg.cache().disabled() && in.cache) {
    in.cache->configure(cfg.cache());
    routes->cache = in.cache;
  }
  if (in.inventory) routes->placement = gpu::Placement::build(cfg.gpu().placement(), *in.inventory, routes->pools);
  if (in.response_owners) {
    std::optional<common::RedisLink::Settings> redis;
    if (const std::string& a = cfg.api().redis_address(); !a.empty() && a != "none") {
      redis = common::RedisLink::at(a, std::chrono::milliseconds(50));
    }
    in.response_owners->configure(std::chrono::seconds(cfg.api().response_affinity_ttl_seconds()),
                                  cfg.api().max_remembered_responses(), redis);
  }
  routes->stages = buildStages(cfg, routes->limiter, routes->cache, routes->placement, std::move(in.response_owners));
  routes->observers = buildObservers(cfg, std::move(in.recorders), in.registry);
  routes->outliers = buildOutlierDetector(cfg, std::move(in.events));
  return routes;
}

}  // namespace spillway::routing
