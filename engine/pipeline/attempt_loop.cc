#include "pipeline/attempt_loop.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "pipeline/route_table.h"
#include "pipeline/slot_source.h"
#include "upstream/attempt_outcome.h"

namespace spillway::pipeline {

using Clock = std::chrono::steady_clock;

AttemptLoop::AttemptLoop(metrics::Registry& registry, const upstream::TlsContexts& tls)
    : tls_(tls),
      connects_(registry.counter("spillway_upstream_connects_total",
                                 "Upstream connection attempts, by backend and result.", {"backend", "result"})),
      retries_(registry.counter("spillway_upstream_retries_total",
                                "Requests re-sent before any response byte, by backend and reason.",
                                {"backend", "reason"})) {}

common::Awaitable<AttemptEnd> AttemptLoop::run(RequestContext& ctx, const upstream::ExchangeRequest& request,
                                               upstream::ConnectionPools& connections) {
  const PoolRoute& pool = *ctx.pool;
  const uint32_t max_attempts = std::max<uint32_t>(1, ctx.routes->config.upstream().retry().max_attempts());
  RetryBudget::Scope budget(*pool.retry_budget);
  std::optional<HeldAnswer> held;  // the latest refusal, relayed if no one else takes the request
  AttemptEnd end;
  // A pass that puts the request back in the queue after a busy answer is
  // not an attempt: it neither counts against max_attempts nor is a retry.
  bool requeue = false;
  for (uint32_t attempt = 0; attempt < max_attempts; attempt += requeue ? 0 : 1) {
    const bool failover = !std::exchange(requeue, false) && attempt > 0;
    if (failover && !budget.startRetry()) break;
    balance::PickContext pc;
    pc.hash_key = ctx.hash_key;
    pc.has_hash_key = ctx.has_hash_key;
    pc.prefix_blocks = ctx.prefix_blocks;
    pc.skip = ctx.tried;
    pc.only = ctx.placement;
    // A backend slot from admission (the queue, or the balancer alone).
    const EarlierAttempts earlier{held.has_value(), held ? held->retry_after_seconds : 0};
    std::optional<SlotResult> slot = pool.slot_source->tryNow(ctx, pc, earlier);
    if (!slot) slot = co_await pool.slot_source->wait(ctx, pc, earlier);
    if (slot->kind == SlotResult::Kind::kAnswered) co_return AttemptEnd{AttemptEnd::Kind::kAnswer};
    if (slot->kind == SlotResult::Kind::kNobodyElse) break;  // report what we saw
    const upstream::BackendPtr backend = std::move(slot->backend);
    if (failover) {
      ++ctx.retries;
      retries_.with({backend->name(), "another_backend"}).inc();
    }
    upstream::ExchangeRequest er = request;
    // Hold a refusal back only when another attempt could go elsewhere, or
    // admission may put the request back in its queue.
    er.hold_refusals = pool.slot_source->mayRequeue(ctx) ||
                       (attempt + 1 < max_attempts && ctx.tried.size() + 1 < pool.backends.size());
    const Step step = co_await attemptOn(ctx, backend, er, connections, held, end);
    if (step == Step::kEnded) co_return end;
    requeue = step == Step::kRequeue;
    if (!requeue) ctx.tried.push_back(backend.get());
  }
  co_return afterEveryAttempt(ctx, std::move(held));
}

common::Awaitable<AttemptLoop::Step> AttemptLoop::attemptOn(RequestContext& ctx, const upstream::BackendPtr& backend,
                                                            upstream::ExchangeRequest request,
                                                            upstream::ConnectionPools& connections,
                                                            std::optional<HeldAnswer>& held, AttemptEnd& end) {
  const PoolRoute& pool = *ctx.pool;
  const RouteTable& routes = *ctx.routes;
  upstream::Backend& b = *backend;
  ctx.attempt_start = Clock::now();
  ctx.in_flight_at_dispatch = b.inFlight();
  BackendLease lease(backend, ctx.routes);
  ctx.backend = backend;
  ++ctx.attempts;
  if (!ctx.rewritten_body.empty()) request.body = ctx.rewritten_body;
  std::shared_ptr<upstream::ConnectionPool> cpool =
      connections.forBackend(backend, routes.config.upstream().max_idle_connections());

  // A stale pooled connection is retried once on a fresh one, same backend.
  for (int fresh_try = 0; fresh_try < 2; ++fresh_try) {
    upstream::ConnectionPtr conn = cpool->takeIdle();
    const bool reused = conn != nullptr;
    if (!conn) {
      auto opened = co_await upstream::openConnection(backend, tls_.forBackend(b),
                                                      std::chrono::milliseconds(b.config().connect_timeout_ms()));
      if (!opened.ok()) {
        connects_.with({b.name(), "error"}).inc();
        ctx.error = upstream::reportConnectFailure(b, opened.status(), *routes.outliers, pool.backends);
        co_return Step::kNextBackend;
      }
      connects_.with({b.name(), "ok"}).inc();
      conn = std::move(*opened);
    }

    std::unique_ptr<upstream::ResponseSink> client =
        ctx.channel->sink(ctx.response_headers, std::chrono::milliseconds(b.config().idle_timeout_ms()));
    SinkChain chain;
    upstream::ResponseSink& sink = buildChain(ctx, *client, chain);
    upstream::ExchangeResult r = co_await upstream::exchange(*conn, b, request, reused, sink);
    const Step step = judge(ctx, b, r, conn, *cpool, held, end);
    if (step != Step::kFreshConnection) co_return step;
  }
  co_return Step::kNextBackend;  // stale twice
}

AttemptLoop::Step AttemptLoop::judge(RequestContext& ctx, upstream::Backend& b, upstream::ExchangeResult& r,
                                     upstream::ConnectionPtr& conn, upstream::ConnectionPool& cpool,
                                     std::optional<HeldAnswer>& held, AttemptEnd& end) {
  const PoolRoute& pool = *ctx.pool;
  const RouteTable& routes = *ctx.routes;
  if (ctx.cut_by_sink) {
    // Ended for the caller's token budget, not for anything the backend
    // did: counted as turned away by the limits (429, rate_limited); the
    // connection closes (the upstream was not read to its end).
    ctx.status = 429;
    ctx.drop = DropReason::kRateLimited;
    ctx.output_tokens = ctx.reported_output_tokens.value_or(r.output_tokens);
    if (r.saw_first_byte) ctx.first_byte = r.first_byte;
    end = AttemptEnd{AttemptEnd::Kind::kRelayed, false};
    return Step::kEnded;
  }
  switch (r.outcome) {
    case upstream::Exchange::kRetryable:
      retries_.with({b.name(), "stale_connection"}).inc();
      return Step::kFreshConnection;
    case upstream::Exchange::kFailedBeforeResponse:
      upstream::reportFailure(b, r.error.message, *routes.outliers, pool.backends);
      ctx.error = std::move(r.error);
      if (ctx.error->status != 504) return Step::kNextBackend;
      end = AttemptEnd{AttemptEnd::Kind::kAnswer};  // waited long enough
      return Step::kEnded;
    case upstream::Exchange::kRefused: {
      if (r.upstream_reusable) cpool.putBack(std::move(conn));
      const uint32_t retry_after =
          upstream::reportRefusal(b, r.status, r.held_retry_after, *routes.outliers, pool.backends);
      held = HeldAnswer{r.status, std::move(r.held_body), std::move(r.held_content_type), retry_after, b.name()};
      ctx.error.reset();
      // Busy: admission may put the request back in its queue; else
      // another backend.
      const bool requeue = upstream::attemptResultFor(r.status) == upstream::AttemptResult::kBusy &&
                           pool.slot_source->requeueAfterBusy(ctx, b);
      return requeue ? Step::kRequeue : Step::kNextBackend;
    }
    case upstream::Exchange::kDone:
    case upstream::Exchange::kClientGone:
    case upstream::Exchange::kAbortedMidBody: {
      ctx.status = r.status;
      ctx.output_tokens = ctx.reported_output_tokens.value_or(r.output_tokens);
      if (r.saw_first_byte) ctx.first_byte = r.first_byte;
      upstream::reportAnswer(b, r.status, r.outcome == upstream::Exchange::kAbortedMidBody, *routes.outliers,
                             pool.backends);
      if (r.outcome == upstream::Exchange::kDone) {
        conn->requests++;
        if (r.upstream_reusable) cpool.putBack(std::move(conn));
        end = AttemptEnd{AttemptEnd::Kind::kRelayed, true};
        return Step::kEnded;
      }
      // Broken responses are counted apart from clean ones: 499 (client
      // gone) and 502 (upstream broke mid-body), as nginx does.
      ctx.status = r.outcome == upstream::Exchange::kClientGone ? 499 : 502;
      end = AttemptEnd{AttemptEnd::Kind::kRelayed, false};
      return Step::kEnded;
    }
  }
  return Step::kNextBackend;
}

upstream::ResponseSink& AttemptLoop::buildChain(RequestContext& ctx, upstream::ResponseSink& client,
                                                SinkChain& chain) {
  upstream::ResponseSink* sink = &client;
  const auto& stages = ctx.routes->stages;
  for (auto it = stages.rbegin(); it != stages.rend(); ++it) sink = &(*it)->wrapSink(ctx, *sink, chain);
  return *sink;
}

AttemptEnd AttemptLoop::afterEveryAttempt(RequestContext& ctx, std::optional<HeldAnswer> held) {
  // Busy after every attempt: admission may answer otherwise (the queue
  // sheds or degrades; it never relays the fleet's 503).
  if (held && upstream::attemptResultFor(held->status) == upstream::AttemptResult::kBusy &&
      ctx.pool->slot_source->answerInsteadOfBusy(ctx, held->retry_after_seconds)) {
    return AttemptEnd{AttemptEnd::Kind::kAnswer};
  }
  if (held) {
    // Nobody else could take it: the backend's own answer, as it gave it. A
    // busy answer always tells the client when to come back.
    if (held->retry_after_seconds == 0 && (held->status == 429 || held->status == 503)) {
      held->retry_after_seconds = ctx.routes->config.server().retry_after_seconds();
    }
    if (held->content_type.empty()) held->content_type = "application/json";
    ctx.status = held->status;
    return AttemptEnd{AttemptEnd::Kind::kHeld, true, std::move(*held)};
  }
  if (!ctx.error) {
    ctx.error = openai::ApiError{502, "Every upstream attempt failed before a response began.", "upstream_error", "",
                                 "upstream_error"};
  }
  return AttemptEnd{AttemptEnd::Kind::kAnswer};
}

}  // namespace spillway::pipeline
