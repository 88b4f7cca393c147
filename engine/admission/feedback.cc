#include "admission/feedback.h"

#include "admission/admission_queue.h"
#include "admission/gcra.h"
#include "admission/priority.h"
#include "admission/rate_limit.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

void AdmissionFeedback::onComplete(const pipeline::RequestContext& ctx) {
  using Clock = pipeline::RequestContext::Clock;
  const auto now = Clock::now();
  // Turned away before the queue (the queue counts its own drops: queue_full,
  // deadline, no_backend): the queue's per-tenant drop counts hear of it.
  if ((ctx.drop == DropReason::kRateLimited || ctx.drop == DropReason::kDegraded) && ctx.pool && ctx.pool->queue) {
    ctx.pool->queue->countDrop(ctx.drop, pipeline::tenantOf(ctx));
  }
  if (ctx.backend && ctx.backend->learnsLimit() && ctx.status >= 200 && ctx.status < 300 && ctx.first_byte) {
    auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    upstream::AdaptiveLimit& limit = ctx.backend->adaptiveLimit();
    const double total = ms(now - ctx.attempt_start);
    double waiting = 0, per_token = -1;
    if (ctx.parsed.stream) {
      waiting = ms(*ctx.first_byte - ctx.attempt_start);
      if (ctx.output_tokens > 1) per_token = ms(now - *ctx.first_byte) / (ctx.output_tokens - 1);
    } else {
      if (ctx.output_tokens > 0) per_token = total / ctx.output_tokens;
      waiting = std::max(0.0, total - ctx.output_tokens * limit.fastestMsPerToken());
    }
    limit.tryFinished(per_token, waiting, ctx.in_flight_at_dispatch, total);
  }
  if (ctx.pool && ctx.pool->queue) ctx.pool->queue->chargeOutput(ctx.caller.priority, ctx.caller.tenant, ctx.output_tokens);
  // Requests limited by count alone (passthrough, stored responses) were
  // charged no tokens and have none to reconcile.
  if (ctx.token_charge && ctx.token_charge->tokens > 0) {
    const double actual = static_cast<double>(ctx.prompt_tokens_estimate) + ctx.output_tokens;
    RateLimiter::reconcile(*ctx.token_charge, actual,
                           std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
  }
}

}  // namespace spillway::admission
