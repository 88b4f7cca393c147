// A pipeline stage: one policy a request passes through between parsing and
// the attempt loop (identify, authenticate, route, rate_limit, cache,
// degrade, placement, affinity, the cache's slower tiers and coalescing).
// Stages are built from config into the routing snapshot, so a config apply
// swaps them with the routes.
//
// Contract: a stage runs on the request's worker thread, for many requests
// at once on different threads: it keeps its own state thread-safe. Most
// stages decide at once: process() returns kContinue to pass the request
// on, or kAnswered. A stage that must wait for this request (a slower cache
// tier, a coalesced flight) says so with waits(ctx) and does its work in
// run(), which the gateway co_awaits; otherwise the gateway calls process(),
// so a stage that has nothing to wait for costs no coroutine frame.
//
// kAnswered means one of:
//   - ctx.error is set: the gateway writes that error (with
//     ctx.retry_after_seconds, ctx.drop);
//   - ctx.answer_body is set: the gateway writes that whole answer;
//   - ctx.answered_in_place: the stage wrote the answer itself through
//     ctx.channel and set ctx.status (and ctx.keep_connection).
// Either way later stages and the upstream are skipped, and the gateway
// completes the request (metrics, observers) exactly once.
//
// A stage that must see the answer on its way to the client (the token
// meter, the cache's fill) puts a sink in front of the chain with
// wrapSink(): the attempt loop builds the chain for each attempt, from the
// client's sink back to the first stage, so the earliest stage's sink sees
// the answer first. Stages that do not wrap return `next`.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string_view>
#include <vector>

#include "common/asio_types.h"
#include "upstream/response_sink.h"

namespace spillway::pipeline {

struct RequestContext;

enum class Verdict { kContinue, kAnswered };

// The sinks stages put in front of the client's for one attempt; owns them
// until the attempt ends.
class SinkChain {
 public:
  template <typename T, typename... Args>
  T& add(Args&&... args) {
    auto sink = std::make_unique<T>(std::forward<Args>(args)...);
    T& ref = *sink;
    owned_.push_back(std::move(sink));
    return ref;
  }

 private:
  std::vector<std::unique_ptr<upstream::ResponseSink>> owned_;
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  // Stages that decide at once.
  virtual Verdict process(RequestContext& ctx) { return Verdict::kContinue; }
  // True when this request's work is in run() (it may suspend).
  virtual bool waits(const RequestContext& ctx) const { return false; }
  virtual common::Awaitable<Verdict> run(RequestContext& ctx) { co_return process(ctx); }
  // The sink this stage puts in front of `next` for ctx's attempt (added to
  // `chain`), or `next` itself.
  virtual upstream::ResponseSink& wrapSink(RequestContext& ctx, upstream::ResponseSink& next, SinkChain& chain) {
    return next;
  }
};

using StagePtr = std::unique_ptr<Stage>;

}  // namespace spillway::pipeline
