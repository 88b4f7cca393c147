#include "cache/slow_tier_stage.h"

#include "cache/cache_stage.h"
#include "cache/cache_state.h"
#include "cache/embedding_items.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::cache {

bool SlowTierStage::waits(const pipeline::RequestContext& ctx) const { return ctx.cache && ctx.cache->active && ctx.cache->lookup; }

common::Awaitable<pipeline::Verdict> SlowTierStage::run(pipeline::RequestContext& ctx) {
  CacheState& c = *ctx.cache;
  if (!c.active || !c.lookup) co_return pipeline::Verdict::kContinue;
  if (c.items) {
    // Embeddings the memory tier left incomplete (cache_stage.cc answers
    // the complete ones itself).
    co_await findInSlowTiers(c.items, *cache_);
    co_return answerFromItems(ctx, *cache_) ? pipeline::Verdict::kAnswered : pipeline::Verdict::kContinue;
  }
  Tier tier = Tier::kDisk;
  const std::string& model = ctx.pool->model;
  Found f = co_await cache_->findSlow(c.key, model, c.tenant, cache_->nowMs(), &tier);
  if (f && !f.stale && answerFromEntry(ctx, *f.entry, Outcome::kHit, tier)) {
    cache_->count(Outcome::kHit, tier);
    co_return pipeline::Verdict::kAnswered;
  }
  if (f && f.stale && !c.stale) c.stale = f.entry;
  co_return pipeline::Verdict::kContinue;
}

}  // namespace spillway::cache
