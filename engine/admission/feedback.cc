#include "admission/feedback.h"

#include "admission/admission_queue.h"
#include "admission/gcra.h"
#include "admission/priority.h"
#include "admission/rate_limit.h"
#include "common/clock.h"
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
    // The backend's own queue, when it reported it recently (LoadScraper).
    const auto reported = ctx.backend->reportedLoad();
    const double reported_waiting =
        reported.until_ms != 0 && reported.until_ms > common::wallClockMs() ? reported.waiting : -1;
    limit.tryFinished(per_token, waiting, ctx.in_flight_at_dispatch, total, reported_waiting);
  }
  if (ctx.pool && ctx.pool->queue) {
    AdmissionQueue& queue = *ctx.pool->queue;
    queue.chargeOutput(ctx.caller.priority, ctx.caller.tenant, ctx.output_tokens);
    const bool full_answer = ctx.status >= 200 && ctx.status < 300 && ctx.degraded == 0 && ctx.drop == DropReason::kNone;
    // What the objective measures: the first token of a stream, else the whole answer.
    const auto first = ctx.first_token ? ctx.first_token : ctx.first_byte;
    const auto measured_end = ctx.parsed.stream && first ? *first : now;
    if (full_answer && ctx.backend) {
      queue.observeService(ctx.parsed.stream, std::chrono::duration<double>(measured_end - ctx.attempt_start).count());
    }
    // Attainment: every routed request counts, except those a rate limit
    // refused (a limit is policy, not latency).
    if (ctx.objective.count() > 0 && ctx.drop != DropReason::kRateLimited) {
      queue.countObjective(ctx.caller.priority, full_answer && measured_end - ctx.start <= ctx.objective);
    }
  }
  // Requests limited by count alone (passthrough, stored responses) were
  // charged no tokens and have none to reconcile.
  if (ctx.token_charge && ctx.token_charge->tokens > 0) {
    const double actual = static_cast<double>(ctx.prompt_tokens_estimate) + ctx.output_tokens;
    RateLimiter::reconcile(*ctx.token_charge, actual,
                           std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
  }
}

}  // namespace spillway::admission
