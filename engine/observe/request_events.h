// The last requests that went wrong, for the operator's event list (the
// console's Usage page, `spillctl usage --events`): each refused, failed or
// degraded request with its trace id, so one line of the list leads to the
// access log's line and the backend's trace. A bounded ring, one per engine
// (kept across applies); successes never enter it, so the request path
// pays for it only when something already went wrong.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "pipeline/completion.h"

namespace spillway::observe {

struct RequestEvent {
  int64_t ts_ms = 0;
  std::string tenant;
  std::string model;    // the pool's, or what the client asked for
  std::string route;    // chat_completions, embeddings, ...
  int status = 0;
  std::string reason;   // the drop reason, the error code, or "degraded"
  int degraded = 0;     // degradation level applied (0: none)
  std::string backend;  // the last attempt's, if any
  std::string trace_id;
};

class RequestEvents {
 public:
  explicit RequestEvents(size_t capacity = 500) : capacity_(capacity) {}
  void record(RequestEvent e);
  // Newest first, at most `limit`.
  std::vector<RequestEvent> recent(size_t limit) const;

 private:
  const size_t capacity_;
  mutable common::Mutex mu_;
  std::deque<RequestEvent> events_ ABSL_GUARDED_BY(mu_);  // oldest first
};

// Records each request that ended with status >= 400, was shed, or was
// answered degraded.
class RequestEventsObserver final : public pipeline::CompletionObserver {
 public:
  explicit RequestEventsObserver(std::shared_ptr<RequestEvents> events) : events_(std::move(events)) {}
  void onComplete(const pipeline::RequestContext& ctx) override;

 private:
  std::shared_ptr<RequestEvents> events_;
};

}  // namespace spillway::observe
