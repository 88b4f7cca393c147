// The cache's slower tiers (after the cache stage's memory lookup and the
// other stages): a cacheable request L1 could not answer asks the disk tier
// (SQLite, behind its Bloom filter) and the Redis tier, off the worker
// thread. A fresh entry answers (x-spillway-cache: hit, with its tier); an
// expired one within its grace is kept for a degraded answer later.
#pragma once

#include <memory>

#include "cache/response_cache.h"
#include "pipeline/stage.h"

namespace spillway::cache {

class SlowTierStage final : public pipeline::Stage {
 public:
  explicit SlowTierStage(std::shared_ptr<ResponseCache> cache) : cache_(std::move(cache)) {}
  std::string_view name() const override { return "cache_tiers"; }
  // Only cacheable requests (ctx.cache, set by the cache stage) wait here.
  bool waits(const pipeline::RequestContext& ctx) const override;
  common::Awaitable<pipeline::Verdict> run(pipeline::RequestContext& ctx) override;

 private:
  std::shared_ptr<ResponseCache> cache_;
};

}  // namespace spillway::cache
