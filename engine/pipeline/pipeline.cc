#include "pipeline/pipeline.h"

#include "admission/authenticate.h"
#include "admission/degradation.h"
#include "admission/feedback.h"
#include "admission/rate_limit.h"
#include "cache/cache_stage.h"
#include "cache/coalesce_stage.h"
#include "cache/slow_tier_stage.h"
#include "gpu/placement.h"
#include "pipeline/affinity.h"
#include "pipeline/identify.h"
#include "pipeline/route_stage.h"

namespace spillway::pipeline {

std::vector<StagePtr> buildStages(const v1::Config& config, std::shared_ptr<admission::RateLimiter> limiter,
                                  std::shared_ptr<cache::ResponseCache> cache,
                                  std::shared_ptr<const gpu::Placement> placement) {
  std::vector<StagePtr> stages;
  stages.push_back(std::make_unique<IdentifyStage>());
  stages.push_back(std::make_unique<admission::AuthenticateStage>(config));
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

std::vector<CompletionObserverPtr> buildObservers(const v1::Config&) {
  std::vector<CompletionObserverPtr> observers;
  observers.push_back(std::make_unique<BackendFeedback>());
  observers.push_back(std::make_unique<admission::AdmissionFeedback>());
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

}  // namespace spillway::pipeline
