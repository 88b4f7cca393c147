// Coalescing, the cache's last stage: a cacheable request that no tier
// answered joins the identical request in flight, or leads one.
//   - Leader: marked x-spillway-cache: miss and passed on; its answer fills
//     the cache and the flight on its way (fill_sink), and its FlightLease
//     leaves the flight when the request ends.
//   - Waiter: served from the leader's answer — relayed live, chunk by
//     chunk, when it asked for the same form (a stream with the same
//     include_usage), else replayed whole in its own form
//     (x-spillway-cache: coalesced). A flight that fails before anything
//     was sent lets its waiters join again (one of them leads the next
//     try); after three rounds a waiter goes upstream alone.
// With coalescing off (cache.coalesce: false) it only counts the miss.
#pragma once

#include <memory>

#include "cache/coalescer.h"
#include "cache/response_cache.h"
#include "pipeline/stage.h"

namespace spillway::cache {

// Leaves a led flight when the request that leads it ends (destroyed with
// the request context).
class FlightLease {
 public:
  FlightLease(std::shared_ptr<ResponseCache> cache, CacheKey key, FlightPtr flight)
      : cache_(std::move(cache)), key_(key), flight_(std::move(flight)) {}
  ~FlightLease() { cache_->coalescer().leave(key_, flight_); }
  FlightLease(const FlightLease&) = delete;
  FlightLease& operator=(const FlightLease&) = delete;

 private:
  std::shared_ptr<ResponseCache> cache_;
  CacheKey key_;
  FlightPtr flight_;
};

class CoalesceStage final : public pipeline::Stage {
 public:
  explicit CoalesceStage(std::shared_ptr<ResponseCache> cache) : cache_(std::move(cache)) {}
  std::string_view name() const override { return "coalesce"; }
  // Only cacheable requests (ctx.cache, set by the cache stage) wait here.
  bool waits(const pipeline::RequestContext& ctx) const override;
  common::Awaitable<pipeline::Verdict> run(pipeline::RequestContext& ctx) override;

 private:
  enum class Followed { kAnswered, kNotAnswered };
  // Serves a waiter from `flight`; kNotAnswered when the flight failed
  // before anything was sent (the caller joins again or goes upstream).
  common::Awaitable<Followed> follow(pipeline::RequestContext& ctx, Flight& flight);
  void markMiss(pipeline::RequestContext& ctx);

  std::shared_ptr<ResponseCache> cache_;
};

}  // namespace spillway::cache
