#include "admission/shed.h"

#include <algorithm>

#include "admission/priority.h"
#include "common/strings.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

void shed(pipeline::RequestContext& ctx, DropReason reason) {
  const std::string& model = ctx.pool->model;
  ctx.drop = reason;
  const std::string after = common::strCat(" Please retry after ", std::max<uint32_t>(1, ctx.retry_after_seconds), " s.");
  switch (reason) {
    case DropReason::kNoBackend:
      ctx.error = openai::ApiError{503, common::strCat("No backend can serve `", model, "` right now."), "server_error",
                                   "", "no_backend"};
      break;
    case DropReason::kQueueFull:
      ctx.error = openai::ApiError{429, common::strCat("Spillway's queue for `", model, "` is full.", after),
                                   "rate_limit_error", "", "queue_full"};
      break;
    case DropReason::kDeadline:
      ctx.error = openai::ApiError{429,
                                   common::strCat("Every backend serving `", model,
                                                  "` is busy and none would free up before this request's deadline.",
                                                  after),
                                   "rate_limit_error", "", "deadline"};
      break;
    default:
      ctx.error = openai::ApiError{429, common::strCat("Request refused under load.", after), "rate_limit_error", "",
                                   std::string(dropReasonName(reason))};
  }
  if (ctx.retry_after_seconds == 0) ctx.retry_after_seconds = 1;
}

}  // namespace spillway::admission
