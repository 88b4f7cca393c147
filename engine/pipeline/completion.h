// Completion observers: told once when a proxied request has ended (its
// answer written, or the client gone), with everything the request
// context learned on the way. The gateway counts metrics first, then calls
// the routing snapshot's observers in order (routing/route_builder.cc
// buildObservers): BackendFeedback (below), then admission's
// AdmissionFeedback (learned limits, fair-share charges, the queue's drop
// counts, token reconciliation). Cache fills and token meters are not
// observers: they ride the answer as sinks a stage puts in its chain
// (stage.h, wrapSink).
//
// Contract: onComplete() runs on the request's worker thread, concurrently
// for many requests; it must not block.
#pragma once

#include <memory>
#include <string_view>

namespace spillway::pipeline {

struct RequestContext;

class CompletionObserver {
 public:
  virtual ~CompletionObserver() = default;
  virtual void onComplete(const RequestContext& ctx) = 0;
};

using CompletionObserverPtr = std::unique_ptr<CompletionObserver>;

// The value of a header line the stages added to the answer (what the
// client saw: "x-spillway-cache" → "hit"), "" when none; for observers.
std::string_view addedHeader(const RequestContext& ctx, std::string_view name);

// Feeds each backend's passive statistics (requests, failures, EWMA latency
// and latency per output token) and the pool's balancer.
class BackendFeedback final : public CompletionObserver {
 public:
  void onComplete(const RequestContext& ctx) override;
};

}  // namespace spillway::pipeline
