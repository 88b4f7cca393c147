#include "pipeline/route_stage.h"

#include "common/strings.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::pipeline {

Verdict RouteStage::process(RequestContext& ctx) {
  if (ctx.parsed.model.empty() && ctx.parsed.endpoint == openai::Endpoint::kPassthrough) {
    if (ctx.routes->pools.size() != 1) {
      ctx.error = openai::ApiError{400,
                                   "Name the model this request is for: a JSON \"model\" field, or a \"model\" field "
                                   "of the multipart form.",
                                   "invalid_request_error", "model", "missing_required_parameter"};
      return Verdict::kAnswered;
    }
    ctx.parsed.model = ctx.routes->pools.begin()->first;
  }
  ctx.pool = ctx.routes->find(ctx.parsed.model);
  if (!ctx.pool) {
    ctx.error = openai::modelNotFound(ctx.parsed.model);
    return Verdict::kAnswered;
  }
  if (!ctx.pool->serves(ctx.parsed.endpoint)) {
    ctx.error = openai::ApiError{404,
                                 common::strCat("The model `", ctx.parsed.model, "` does not serve ",
                                                openai::endpointName(ctx.parsed.endpoint), "."),
                                 "invalid_request_error", "model", "unsupported_endpoint"};
    ctx.pool = nullptr;
    return Verdict::kAnswered;
  }
  return Verdict::kContinue;
}

}  // namespace spillway::pipeline
