// What a request admission turned away is told: the OpenAI-style error for
// each drop reason (429 rate_limit_error for queue_full, deadline and the
// others; 503 server_error for no_backend), with Retry-After. Written once,
// for the queue's drops and the attempt loop's.
#pragma once

#include "admission/priority.h"

namespace spillway::pipeline {
struct RequestContext;
}

namespace spillway::admission {

// Sets ctx.error and ctx.drop for `reason` (ctx.pool names the model);
// ctx.retry_after_seconds is kept when set, else 1.
void shed(pipeline::RequestContext& ctx, DropReason reason);

}  // namespace spillway::admission
