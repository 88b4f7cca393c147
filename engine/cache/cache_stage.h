// The cache stage (after route and rate_limit, before degrade): decides
// whether the request may be served from and stored in the cache, computes
// its key, and answers an in-memory hit at once. A cacheable request that
// L1 cannot answer goes on with ctx.cache set; the gateway then asks the
// slower tiers and joins the request to an identical one in flight
// (coalescing), or leads it upstream and fills the cache from its answer.
//
// Whether a request is cacheable, in order:
//   x-spillway-cache: off | on     the caller opts out, or in (even when
//                                  sampling is not deterministic);
//   Cache-Control: no-store        not stored (a stored answer may serve it);
//   Cache-Control: no-cache        not served from the cache, but stored;
//   cache.mode                     deterministic (temperature 0 or a seed),
//                                  all, or opt_in.
// Answers carry x-spillway-cache: hit | miss | bypass | coalesced | stale,
// and x-spillway-cache-tier on hits.
//
// Chat and completions are cached whole; embeddings per input
// (embedding_items.h); the Responses API and passthrough routes never (the
// former is stateful on its server, the latter opaque).
#pragma once

#include <memory>
#include <string_view>

#include "cache/response_cache.h"
#include "pipeline/stage.h"

namespace spillway::cache {

class CacheStage final : public pipeline::Stage {
 public:
  // `settings`: this routing table's (built from its config), so the hot
  // path reads no shared state to know them.
  CacheStage(std::shared_ptr<ResponseCache> cache, Settings settings)
      : cache_(std::move(cache)), settings_(std::move(settings)) {}
  std::string_view name() const override { return "cache"; }
  pipeline::Verdict process(pipeline::RequestContext& ctx) override;
  // A cacheable request's answer fills the cache and its coalesced
  // waiters on its way to the client (fill_sink.h).
  upstream::ResponseSink& wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink& next,
                                   pipeline::SinkChain& chain) override;

 private:
  std::shared_ptr<ResponseCache> cache_;
  const Settings settings_;
};

// The header a cache miss carries (added by the coalesce stage).
inline constexpr std::string_view kMissHeader = "x-spillway-cache: miss\r\n";
// Drops the miss mark from a request answered otherwise after all (stale,
// degraded): its answer says what it is instead.
void unmarkMiss(pipeline::RequestContext& ctx);

// An expired cached answer within its grace (ctx.cache.stale), as the
// answer when nothing can serve the request; clears a shed. False when there
// is none or it cannot be given in the form asked.
bool serveStale(pipeline::RequestContext& ctx);

// Embeddings: answers ctx from its item plan when every input was found;
// otherwise rewrites the request to ask for the missing inputs alone (and
// marks the answer with x-spillway-cache-items). True when answered.
bool answerFromItems(pipeline::RequestContext& ctx, ResponseCache& cache);

// Sets ctx's answer from a cached entry in the form the request wants,
// with its x-spillway-cache headers; false when the entry cannot give that
// form.
bool answerFromEntry(pipeline::RequestContext& ctx, const Entry& e, Outcome outcome, Tier tier);

}  // namespace spillway::cache
