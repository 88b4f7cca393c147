// The routing snapshot the request path serves from: which backends serve
// which model, each pool's balancing policy and retry budget, and the
// stages a request passes through. Immutable once built (its atomics are
// counters, not settings); a new config builds a new table and swaps it in
// whole, so policies change atomically with the routes, and requests in
// flight keep the table they started with.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "balance/balancer.h"
#include "openai/openai.h"
#include "pipeline/completion.h"
#include "pipeline/priority.h"
#include "pipeline/retry_budget.h"
#include "pipeline/slot_source.h"
#include "pipeline/stage.h"
#include "spillway/v1/config.pb.h"
#include "upstream/backend.h"
#include "upstream/backend_events.h"
#include "upstream/outlier_detector.h"

// The policies' shared state the snapshot holds, opaque here: the contracts
// include no policy. Their modules (and routing/, which builds the table)
// include the definitions.
namespace spillway::admission {
class AdmissionQueue;
class PoolDegradation;
class RateLimiter;
}  // namespace spillway::admission
namespace spillway::cache {
class ResponseCache;
}
namespace spillway::gpu {
class Placement;
}

namespace spillway::pipeline {

struct PoolRoute {
  uint64_t id = 0;  // unique for the engine's lifetime (metric caches key on it)
  std::string model;
  std::vector<upstream::BackendPtr> backends;
  v1::Balancing balancing;  // effective settings (defaults applied)
  // pools[].priority: the class of its requests (a route rule), if set.
  std::optional<Priority> priority;
  std::string owned_by;  // what /v1/models says
  // pools[].endpoints (all when the config lists none); kResponseById goes
  // with kResponses.
  std::vector<openai::Endpoint> endpoints;
  bool serves(openai::Endpoint e) const {
    if (e == openai::Endpoint::kResponseById) e = openai::Endpoint::kResponses;
    for (openai::Endpoint x : endpoints) {
      if (x == e) return true;
    }
    return false;
  }
  balance::BalancerPtr balancer;
  balance::Needs needs;     // what the balancer wants computed per request
  std::unique_ptr<RetryBudget> retry_budget;
  // The gateway queue (admission); null when admission is off. Shared with
  // the next routing table for the same model, so waiters survive applies.
  std::shared_ptr<admission::AdmissionQueue> queue;
  // The pool's degradation level (automatic or pinned); like the queue,
  // handed on across applies.
  std::shared_ptr<admission::PoolDegradation> degradation;
  // Where each attempt gets its backend: the queue, or the balancer alone
  // (slot_source.h; admission/slot_source.h makes it).
  SlotSourcePtr slot_source;
  bool uses(const upstream::Backend& b) const {
    for (const auto& pb : backends) {
      if (pb.get() == &b) return true;
    }
    return false;
  }
};

struct RouteTable {
  v1::Config config;                           // effective (defaults applied)
  std::string retry_after_text;                // server.retry_after_seconds as header text
  std::vector<upstream::BackendPtr> backends;  // config order
  std::map<std::string, PoolRoute> pools;      // by model id
  // api.passthrough_routes, by path.
  std::set<std::string, std::less<>> passthrough;
  // Every route served, for the 404 of an unknown one ("/v1/chat/completions, ...").
  std::string served_routes;
  // The stages every proxied request runs through, in order (stage.h).
  std::vector<StagePtr> stages;
  // Passive outlier detection and back-off, fed by every attempt.
  std::unique_ptr<upstream::OutlierDetector> outliers;
  // Rate-limit buckets (null when nothing is limited).
  std::shared_ptr<admission::RateLimiter> limiter;
  // The response cache (null when cache.disabled); the engine's, shared by
  // every table.
  std::shared_ptr<cache::ResponseCache> cache;
  // GPU placement by class and request length (null: none configured).
  std::shared_ptr<const gpu::Placement> placement;
  // Told when each request ends, after the gateway's own metrics.
  std::vector<CompletionObserverPtr> observers;

  const PoolRoute* find(const std::string& model) const {
    auto it = pools.find(model);
    return it == pools.end() ? nullptr : &it->second;
  }
  // A slot of `b` freed: each pool's slot source may hand it to a waiter.
  void onRelease(const upstream::Backend& b) const {
    for (const auto& [model, p] : pools) {
      if (p.slot_source) p.slot_source->released(p, b);
    }
  }
  bool anyAvailable() const {
    for (const auto& b : backends) {
      if (b->available()) return true;
    }
    return false;
  }
};

using RouteTablePtr = std::shared_ptr<const RouteTable>;

// Holds a backend's request slot (taken by the balancer or the queue) for
// one attempt; freeing it wakes the next waiter of the queues that use the
// backend (RouteTable::onRelease). It refers to the request's routing table
// (kept alive by the request), not the gateway: a request frame destroyed at
// shutdown outlives the gateway. The queues are shared with later tables,
// so waiters that came after an apply are reached as well.
class BackendLease {
 public:
  BackendLease(upstream::BackendPtr b, const RouteTable* routes) : b_(std::move(b)), routes_(routes) {}
  ~BackendLease() {
    b_->release();
    routes_->onRelease(*b_);
  }
  BackendLease(const BackendLease&) = delete;
  BackendLease& operator=(const BackendLease&) = delete;

 private:
  upstream::BackendPtr b_;
  const RouteTable* routes_;
};

}  // namespace spillway::pipeline
