#include "admission/queue_slot_source.h"

#include <algorithm>

#include "admission/admission_queue.h"
#include "admission/degradation.h"
#include "admission/priority.h"
#include "admission/shed.h"
#include "cache/cache_stage.h"
#include "common/clock.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

QueueSlotSource::QueueSlotSource(uint32_t no_backend_retry_after_seconds, uint32_t max_requeues,
                                 metrics::Registry& registry)
    : no_backend_retry_after_(no_backend_retry_after_seconds),
      max_requeues_(max_requeues),
      queue_wait_(registry.histogram("spillway_queue_wait_seconds",
                                     "Time requests waited in the gateway queue for a backend slot (those that waited).",
                                     {"model", "class"}, metrics::latencyBucketsSeconds())),
      requeues_(registry.counter("spillway_admission_requeues_total",
                                 "Busy answers (429/503 before any byte) that put a request back in the queue, by backend.",
                                 {"backend"})) {}

bool QueueSlotSource::mayRequeue(const pipeline::RequestContext& ctx) const { return ctx.requeues < max_requeues_; }

bool QueueSlotSource::requeueAfterBusy(pipeline::RequestContext& ctx, upstream::Backend& backend) {
  if (ctx.requeues >= max_requeues_) return false;
  // The backend is full: a capacity signal, not an answer. Its limit
  // shrinks, it cools down (the outlier detector), and the request waits
  // again with its deadline still running.
  if (backend.learnsLimit()) backend.adaptiveLimit().onOverload(common::wallClockMs());
  requeues_.with({backend.name()}).inc();
  ++ctx.requeues;
  return true;
}

AdmissionQueue::Ask QueueSlotSource::ask(pipeline::RequestContext& ctx, const balance::PickContext& pick) const {
  AdmissionQueue::Ask a{ctx.caller.priority, ctx.caller.tenant, static_cast<double>(ctx.prompt_tokens_estimate),
                        ctx.deadline, {}, pick, ctx.requeues > 0};
  if (ctx.objective.count() > 0) {
    // The wait the objective leaves once the pool's recent service time is
    // taken off — at least half the objective: when the backends alone take
    // longer than it, refusing every request would help nobody.
    using Seconds = std::chrono::duration<double>;
    const Seconds objective = ctx.objective;
    const Seconds budget =
        std::max(objective - Seconds(ctx.pool->queue->serviceSeconds(ctx.parsed.stream)), objective / 2);
    a.objective_deadline = ctx.start + std::chrono::duration_cast<pipeline::RequestContext::Clock::duration>(budget);
  }
  if (ctx.parsed.max_tokens) a.expected_output = static_cast<double>(*ctx.parsed.max_tokens);
  a.objective = ctx.objective;
  return a;
}

std::optional<SlotResult> QueueSlotSource::tryNow(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                                  const EarlierAttempts& earlier) {
  const pipeline::PoolRoute& pool = *ctx.pool;
  // An open-access caller's tenant (its address: a system call) is looked
  // up only when fairness needs it.
  if (ctx.caller.tenant.empty() && pool.queue->contended()) ctx.caller.tenant = pipeline::clientAddress(ctx);
  std::optional<AdmissionQueue::Ticket> ticket = pool.queue->tryAdmit(*pool.balancer, pool.backends, ask(ctx, pick));
  if (!ticket) return std::nullopt;
  return settle(ctx, *ticket, earlier);
}

common::Awaitable<SlotResult> QueueSlotSource::wait(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                                    const EarlierAttempts& earlier) {
  const pipeline::PoolRoute& pool = *ctx.pool;
  if (ctx.caller.tenant.empty()) ctx.caller.tenant = pipeline::clientAddress(ctx);
  AdmissionQueue::Ask a = ask(ctx, pick);
  AdmissionQueue::Ticket ticket = co_await pool.queue->acquire(*pool.balancer, pool.backends, a);
  if (ticket.objective_passed) {
    // Admitted, and its objective's wait passed without a slot (the
    // prediction missed): a degraded answer now while its pool is degraded;
    // else, while the queue moves, it keeps its turn (first of its
    // tenant's) for as long again (or to its class's timeout): a miss of the
    // prediction costs a longer wait, not a refusal, unless it missed by
    // twice. A queue that did not move (every slot held since it came)
    // refuses it now.
    addWait(ctx, ticket.waited);
    ticket.queued = false;
    pool.queue->noteTurnedAway();
    if (answerDegraded(ctx)) co_return SlotResult{SlotResult::Kind::kAnswered, nullptr};
    if (ticket.queue_moved) {
      a.deadline = std::min(a.deadline, AdmissionQueue::Clock::now() + (a.objective_deadline - ctx.start));
      a.objective_deadline = {};
      a.requeue = true;
      ticket = co_await pool.queue->acquire(*pool.balancer, pool.backends, a);
    } else {
      pool.queue->countDrop(DropReason::kDeadline, ctx.caller.tenant);
      ticket.dropped = DropReason::kDeadline;
      ticket.retry_after_seconds = pool.queue->drainSeconds();
    }
  }
  co_return settle(ctx, ticket, earlier);
}

SlotResult QueueSlotSource::settle(pipeline::RequestContext& ctx, AdmissionQueue::Ticket& ticket,
                                   const EarlierAttempts& earlier) {
  if (ticket.queued) addWait(ctx, ticket.waited);
  if (ticket.backend) return {SlotResult::Kind::kBackend, std::move(ticket.backend)};
  const DropReason dropped = ticket.dropped;
  if (dropped == DropReason::kNoBackend && cache::serveStale(ctx)) return {SlotResult::Kind::kAnswered, nullptr};
  if (degradeInsteadOfShedding(ctx, dropped)) return {SlotResult::Kind::kAnswered, nullptr};
  // A retry that finds no backend at all reports what the earlier attempt saw.
  if (dropped == DropReason::kNoBackend && (earlier.held || ctx.error)) return {SlotResult::Kind::kNobodyElse, nullptr};
  ctx.retry_after_seconds = dropped == DropReason::kNoBackend ? no_backend_retry_after_ : ticket.retry_after_seconds;
  // After a busy answer, no sooner than that backend asked for.
  if (earlier.held) ctx.retry_after_seconds = std::max(ctx.retry_after_seconds, earlier.held_retry_after);
  shed(ctx, dropped);
  return {SlotResult::Kind::kAnswered, nullptr};
}

void QueueSlotSource::addWait(pipeline::RequestContext& ctx, AdmissionQueue::Clock::duration waited) {
  ctx.queue_wait += waited;
  queue_wait_.with({ctx.pool->model, std::string(priorityName(ctx.caller.priority))})
      .observe(std::chrono::duration<double>(waited).count());
}

bool QueueSlotSource::answerInsteadOfBusy(pipeline::RequestContext& ctx, uint32_t busy_retry_after) {
  // Still busy after every requeue: a degraded answer when the class is
  // degraded, else shed — never relay the fleet's 503.
  AdmissionQueue& queue = *ctx.pool->queue;
  queue.countDrop(DropReason::kDeadline, ctx.caller.tenant);
  if (degradeInsteadOfShedding(ctx, DropReason::kDeadline)) return true;
  ctx.retry_after_seconds = std::max(busy_retry_after, queue.drainSeconds());
  shed(ctx, DropReason::kDeadline);
  return true;
}

void QueueSlotSource::released(const pipeline::PoolRoute& pool, const upstream::Backend& backend) {
  if (pool.queue && pool.queue->waiting() > 0 && pool.uses(backend)) pool.queue->dispatch(*pool.balancer, pool.backends);
}

}  // namespace spillway::admission
