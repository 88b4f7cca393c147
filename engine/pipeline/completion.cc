#include "pipeline/completion.h"

#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::pipeline {

void BackendFeedback::onComplete(const RequestContext& ctx) {
  if (!ctx.backend) return;
  const double seconds = std::chrono::duration<double>(RequestContext::Clock::now() - ctx.start).count();
  const bool failed = ctx.status >= 500;
  ctx.backend->recordOutcome(failed, seconds, ctx.output_tokens);
  if (ctx.pool) ctx.pool->balancer->onComplete({ctx.backend.get(), seconds, ctx.output_tokens, failed});
}

}  // namespace spillway::pipeline
