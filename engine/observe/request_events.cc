#include "observe/request_events.h"

#include "common/clock.h"
#include "openai/openai.h"
#include "pipeline/identify.h"
#include "pipeline/priority.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::observe {

void RequestEvents::record(RequestEvent e) {
  common::MutexLock lock(mu_);
  events_.push_back(std::move(e));
  while (events_.size() > capacity_) events_.pop_front();
}

std::vector<RequestEvent> RequestEvents::recent(size_t limit) const {
  common::MutexLock lock(mu_);
  std::vector<RequestEvent> out;
  for (auto it = events_.rbegin(); it != events_.rend() && out.size() < limit; ++it) out.push_back(*it);
  return out;
}

void RequestEventsObserver::onComplete(const pipeline::RequestContext& ctx) {
  const bool shed = ctx.drop != pipeline::DropReason::kNone;
  if (ctx.status < 400 && !shed && ctx.degraded == 0) return;
  RequestEvent e;
  e.ts_ms = common::wallClockMs();
  // Open access names the tenant (the client's address) only when
  // something needed it: name it here either way.
  e.tenant = ctx.caller.tenant.empty() ? pipeline::clientAddressOf(ctx) : ctx.caller.tenant;
  e.model = ctx.pool ? ctx.pool->model : ctx.parsed.model;
  e.route = openai::endpointName(ctx.parsed.endpoint);
  e.status = ctx.status;
  e.reason = shed        ? std::string(pipeline::dropReasonName(ctx.drop))
             : ctx.error ? ctx.error->code
             : ctx.status >= 400 ? std::string("upstream_error")
                                 : std::string("degraded");
  e.degraded = ctx.degraded;
  if (ctx.backend) e.backend = ctx.backend->name();
  e.trace_id = ctx.trace.trace_id;
  events_->record(std::move(e));
}

}  // namespace spillway::observe
