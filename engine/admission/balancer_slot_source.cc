#include "admission/balancer_slot_source.h"

#include "cache/cache_stage.h"
#include "common/strings.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

std::optional<SlotResult> BalancerSlotSource::tryNow(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                                     const EarlierAttempts& earlier) {
  const pipeline::PoolRoute& pool = *ctx.pool;
  balance::PickResult picked = pool.balancer->pick(pool.backends, pick);
  if (picked.outcome == balance::PickOutcome::kPicked) return SlotResult{SlotResult::Kind::kBackend, std::move(picked.backend)};
  const bool busy = picked.outcome == balance::PickOutcome::kAllBusy;
  if (!busy && cache::serveStale(ctx)) return SlotResult{SlotResult::Kind::kAnswered, nullptr};
  // Failover found nobody else: report what the earlier attempt saw.
  if (earlier.held || ctx.error) return SlotResult{SlotResult::Kind::kNobodyElse, nullptr};
  ctx.error = busy ? openai::serverBusy(common::strCat("Every backend serving `", pool.model,
                                                       "` is at its concurrency limit. Please retry shortly."))
                   : openai::ApiError{503, common::strCat("No healthy backend is serving `", pool.model, "` right now."),
                                      "server_error", "", "no_healthy_backend"};
  ctx.retry_after_seconds = retry_after_;
  return SlotResult{SlotResult::Kind::kAnswered, nullptr};
}

common::Awaitable<SlotResult> BalancerSlotSource::wait(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                                       const EarlierAttempts& earlier) {
  // tryNow always decides; kept for the interface.
  co_return *tryNow(ctx, pick, earlier);
}

}  // namespace spillway::admission
