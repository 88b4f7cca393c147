// The attempt loop: the end of the request path, after the stages. Each
// pass asks the pool's slot source (admission) for a backend slot, connects
// (a stale pooled connection is retried once on a fresh one), sends the
// request through the exchange into the sink chain (each stage's sink in
// front of the client's, stage.h), and decides from the outcome: relayed,
// retried on another backend before the first byte (within the retry
// budget), put back in the queue after a busy answer, or ended. A refusal
// it holds back (a backend's 429/5xx) is relayed as the backend gave it
// when nobody else takes the request — unless admission answers instead.
//
// Threading: run() is called on the request's worker thread with that
// worker's connection pools; the loop itself holds only read-only state and
// its metric families, so one loop serves every worker.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>

#include "common/asio_types.h"
#include "metrics/registry.h"
#include "pipeline/request_context.h"
#include "pipeline/stage.h"
#include "upstream/connection_pool.h"
#include "upstream/exchange.h"

namespace spillway::pipeline {

// A backend's answer the loop held back to try elsewhere first, relayed
// when nobody else took the request.
struct HeldAnswer {
  int status = 0;
  std::string body;
  std::string content_type;  // as the backend gave it ("" for none)
  uint32_t retry_after_seconds = 0;
  std::string backend;
};

// How the loop ended.
struct AttemptEnd {
  enum class Kind {
    kRelayed,  // the answer went to the client (ctx.status says how it ended)
    kAnswer,   // answer ctx as a stage answer (stage.h: ctx.error or ctx.answer_body, or written in place)
    kHeld,     // relay `held`
  };
  Kind kind = Kind::kRelayed;
  bool keep_connection = true;  // kRelayed: whether the client connection may be kept
  HeldAnswer held;
};

class AttemptLoop {
 public:
  // Registers the loop's metric families (upstream connects, retries).
  AttemptLoop(metrics::Registry& registry, const upstream::TlsContexts& tls);

  // Runs ctx's attempts after its stages passed it on. `request`: the
  // method, target, Accept and body to send (ctx.rewritten_body replaces
  // the body when set). Does not complete the request: the caller does,
  // once, whatever the end.
  common::Awaitable<AttemptEnd> run(RequestContext& ctx, const upstream::ExchangeRequest& request,
                                    upstream::ConnectionPools& connections);

 private:
  enum class Step { kNextBackend, kRequeue, kEnded, kFreshConnection };
  // One attempt on the backend admission gave: connect, exchange, judge.
  common::Awaitable<Step> attemptOn(RequestContext& ctx, const upstream::BackendPtr& backend,
                                    upstream::ExchangeRequest request, upstream::ConnectionPools& connections,
                                    std::optional<HeldAnswer>& held, AttemptEnd& end);
  // What an exchange's outcome means: relayed (ended), retried on a fresh
  // connection, on another backend, or back in the queue.
  Step judge(RequestContext& ctx, upstream::Backend& b, upstream::ExchangeResult& r, upstream::ConnectionPtr& conn,
             upstream::ConnectionPool& cpool, std::optional<HeldAnswer>& held, AttemptEnd& end);
  // The sink chain for one attempt: the stages' sinks before the client's.
  upstream::ResponseSink& buildChain(RequestContext& ctx, upstream::ResponseSink& client, SinkChain& chain);
  // Nobody took the request: admission's answer, the held refusal, or a 502.
  AttemptEnd afterEveryAttempt(RequestContext& ctx, std::optional<HeldAnswer> held);

  const upstream::TlsContexts& tls_;
  metrics::Family<metrics::Counter>& connects_;
  metrics::Family<metrics::Counter>& retries_;
};

}  // namespace spillway::pipeline
