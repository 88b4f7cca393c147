// Where an attempt gets its backend: a slot now, a slot after waiting, or
// the reason why not — the one question the attempt loop asks admission.
// One per pool (PoolRoute::slot_source); admission implements it
// (admission/slot_source.h: the gateway queue, or the balancer alone).
//
// Contract: called on the request's worker thread. tryNow() decides without
// waiting where it can (no coroutine frame on the fast path); when it
// returns nullopt, the caller co_awaits wait() for the same attempt.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>

#include "balance/balancer.h"
#include "common/asio_types.h"
#include "upstream/backend.h"

namespace spillway::pipeline {

struct RequestContext;
struct PoolRoute;

struct SlotResult {
  enum class Kind {
    kBackend,     // `backend` with its request slot held (release it after the attempt)
    kAnswered,    // ctx.error or ctx.answer_body is set: answer it
    kNobodyElse,  // a retry found nobody else: report the earlier attempt's outcome
  };
  Kind kind = Kind::kBackend;
  upstream::BackendPtr backend;
};

// What earlier attempts of the request left behind.
struct EarlierAttempts {
  bool held = false;               // a backend's refusal is held, to relay if nobody else takes it
  uint32_t held_retry_after = 0;   // the Retry-After it asked for (0: none)
};

class SlotSource {
 public:
  virtual ~SlotSource() = default;
  // A backend for ctx's next attempt, picked with `pick`, or nullopt when
  // only waiting can tell.
  virtual std::optional<SlotResult> tryNow(RequestContext& ctx, const balance::PickContext& pick,
                                           const EarlierAttempts& earlier) = 0;
  virtual common::Awaitable<SlotResult> wait(RequestContext& ctx, const balance::PickContext& pick,
                                             const EarlierAttempts& earlier) = 0;
  // Whether a backend's refusal should be held back (not relayed at once)
  // because a busy answer may still put the request back here.
  virtual bool mayRequeue(const RequestContext& ctx) const = 0;
  // A backend answered busy (429/503 before any byte): true when the
  // request goes back here for another slot (its deadline still running;
  // not an attempt, not a retry) instead of being tried elsewhere or relayed.
  virtual bool requeueAfterBusy(RequestContext& ctx, upstream::Backend& backend) = 0;
  // Every attempt ended in a backend's busy answer: true when the request
  // is answered otherwise (ctx.error or ctx.answer_body set) instead of
  // relaying that answer.
  virtual bool answerInsteadOfBusy(RequestContext& ctx, uint32_t busy_retry_after) = 0;
  // A slot of `backend` (one of `pool`'s) was freed: a source that keeps
  // requests waiting hands it to the next of them.
  virtual void released(const PoolRoute& pool, const upstream::Backend& backend) {}
};

using SlotSourcePtr = std::unique_ptr<SlotSource>;

}  // namespace spillway::pipeline
