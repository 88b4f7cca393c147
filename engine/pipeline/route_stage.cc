#include "pipeline/route_stage.h"

#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::pipeline {

Verdict RouteStage::process(RequestContext& ctx) {
  ctx.pool = ctx.routes->find(ctx.parsed.model);
  if (ctx.pool) return Verdict::kContinue;
  ctx.error = openai::modelNotFound(ctx.parsed.model);
  return Verdict::kAnswered;
}

}  // namespace spillway::pipeline
