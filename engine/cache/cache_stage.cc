#include "cache/cache_stage.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include "cache/cache_state.h"
#include "cache/embedding_items.h"
#include "cache/fill_sink.h"
#include "cache/response_cache.h"
#include "common/clock.h"
#include "common/strings.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::cache {

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

bool answerFromEntry(pipeline::RequestContext& ctx, const Entry& e, Outcome outcome, Tier tier) {
  auto r = replay(e, Wanted{ctx.parsed.endpoint, ctx.parsed.stream, ctx.parsed.include_usage});
  if (!r) return false;
  ctx.answer_body = std::move(r->body);
  ctx.answer_content_type = r->content_type;
  common::strAppend(&ctx.response_headers, "x-spillway-cache: ", outcomeName(outcome), "\r\n");
  if (outcome != Outcome::kCoalesced) common::strAppend(&ctx.response_headers, "x-spillway-cache-tier: ", tierName(tier), "\r\n");
  return true;
}

void unmarkMiss(pipeline::RequestContext& ctx) {
  if (auto at = ctx.response_headers.find(kMissHeader); at != std::string::npos) {
    ctx.response_headers.erase(at, kMissHeader.size());
  }
}

bool serveStale(pipeline::RequestContext& ctx) {
  if (!ctx.cache || !ctx.cache->stale || !ctx.routes->cache) return false;
  unmarkMiss(ctx);
  if (!answerFromEntry(ctx, *ctx.cache->stale, Outcome::kStale, Tier::kMemory)) return false;
  ctx.routes->cache->count(Outcome::kStale, Tier::kMemory);
  ctx.error.reset();
  ctx.drop = pipeline::DropReason::kNone;
  return true;
}

bool answerFromItems(pipeline::RequestContext& ctx, ResponseCache& cache) {
  CacheState& c = *ctx.cache;
  ItemPlan& plan = *c.items;
  settle(plan);
  if (!plan.complete()) {
    ctx.rewritten_body = upstreamBody(plan, ctx.body);  // "" : the body as it came
    ctx.response_headers += itemsHeader(plan);
    return false;
  }
  ctx.answer_body = assembleAnswer(plan, ctx.parsed.model, 0);
  ctx.answer_content_type = "application/json";
  common::strAppend(&ctx.response_headers, "x-spillway-cache: hit\r\nx-spillway-cache-tier: ", tierName(plan.deepest),
                    "\r\n", itemsHeader(plan));
  cache.count(Outcome::kHit, plan.deepest);
  cache.countItems(plan.hits, 0);
  return true;
}

pipeline::Verdict CacheStage::process(pipeline::RequestContext& ctx) {
  const Settings* s = &settings_;
  switch (ctx.parsed.endpoint) {
    case openai::Endpoint::kChatCompletions:
    case openai::Endpoint::kCompletions:
    case openai::Endpoint::kEmbeddings:
      break;
    default:
      return pipeline::Verdict::kContinue;  // stateful or opaque: never cached
  }
  const auto& h = *ctx.headers;
  const std::string_view opt = h["x-spillway-cache"];
  const std::string_view cc = h[boost::beast::http::field::cache_control];
  const bool opted_in = boost::beast::iequals(opt, "on");
  auto bypass = [&] {
    common::strAppend(&ctx.response_headers, "x-spillway-cache: bypass\r\n");
    cache_->count(Outcome::kBypass);
    return pipeline::Verdict::kContinue;
  };
  // The parser already knows whether sampling repeats: most requests that
  // are not cached stop here, before the canonical form is built.
  if (boost::beast::iequals(opt, "off") || (!opted_in && !s->cachesByDefault(ctx.parsed.deterministic))) {
    return bypass();
  }
  auto canonical = canonicalRequest(ctx.body);
  if (!canonical) return bypass();

  ctx.cache = std::make_shared<CacheState>();
  CacheState& c = *ctx.cache;
  c.lookup = !contains(cc, "no-cache");
  c.store = !contains(cc, "no-store");
  if (s->per_tenant) c.tenant = ctx.caller.tenant.empty() ? pipeline::clientAddress(ctx) : ctx.caller.tenant;
  c.key = s->keyFor(ctx.pool->model, ctx.parsed.endpoint, c.tenant, canonical->text);
  c.active = true;
  if (ctx.parsed.endpoint == openai::Endpoint::kEmbeddings) {
    // Cached per input; the whole request's key names its coalesced flight.
    c.whole = false;
    c.items = planItems(ctx.body, *s, ctx.pool->model, c.tenant);
    if (!c.items) {
      ctx.cache.reset();
      return bypass();
    }
    c.items->store = c.store;
    if (c.lookup) findInMemory(*c.items, *cache_);
    // The slower tiers finish the plan when there are any (slow_tier_stage).
    if (c.lookup && !c.items->complete() && cache_->hasSlowTiers()) return pipeline::Verdict::kContinue;
    return answerFromItems(ctx, *cache_) ? pipeline::Verdict::kAnswered : pipeline::Verdict::kContinue;
  }
  if (!c.lookup) return pipeline::Verdict::kContinue;
  Found f = cache_->findMemory(c.key, cache_->nowMs(), s->grace_ms);
  if (!f) return pipeline::Verdict::kContinue;
  if (f.stale) {
    c.stale = f.entry;
    return pipeline::Verdict::kContinue;
  }
  if (!answerFromEntry(ctx, *f.entry, Outcome::kHit, Tier::kMemory)) return pipeline::Verdict::kContinue;
  cache_->count(Outcome::kHit, Tier::kMemory);
  return pipeline::Verdict::kAnswered;
}

upstream::ResponseSink& CacheStage::wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink& next,
                                             pipeline::SinkChain& chain) {
  if (!ctx.cache || !ctx.cache->active) return next;
  const CacheState& c = *ctx.cache;
  const FillTarget target{c.key, ctx.pool->model, c.tenant, c.store && c.whole, settings_.max_entry_bytes};
  upstream::ResponseSink& fill = chain.add<FillSink>(next, *cache_, target, c.flight.get());
  if (!c.items) return fill;
  // Embeddings: the upstream's answer for the missing inputs becomes the
  // whole answer before the fill shares it with the flight's waiters.
  constexpr size_t kMaxEmbeddingsAnswer = size_t{256} << 20;
  return chain.add<ItemSink>(fill, *cache_, c.items, kMaxEmbeddingsAnswer);
}

}  // namespace spillway::cache
