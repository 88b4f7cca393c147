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
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string_view>

#include "common/asio_types.h"

namespace spillway::pipeline {

struct RequestContext;

enum class Verdict { kContinue, kAnswered };

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  // Stages that decide at once.
  virtual Verdict process(RequestContext& ctx) { return Verdict::kContinue; }
  // True when this request's work is in run() (it may suspend).
  virtual bool waits(const RequestContext& ctx) const { return false; }
  virtual common::Awaitable<Verdict> run(RequestContext& ctx) { co_return process(ctx); }
};

using StagePtr = std::unique_ptr<Stage>;

}  // namespace spillway::pipeline
