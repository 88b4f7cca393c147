// Slots through the pool's gateway queue (admission on): a slot now when
// nobody waits, else a wait in strict priority with fair shares between
// tenants until a slot frees up — refused at once when its predicted wait
// does not fit its objective; once admitted, answered degraded when its
// objective passes and its class is degraded, else served (the class's
// timeout is the only late refusal).
// A drop becomes a 429 (queue_full, deadline) with the queue's drain time as
// Retry-After, or level 1's answer when the request's class is degraded;
// no backend at all is a 503 no_backend, after a stale cached answer.
// A backend's busy answer puts the request back in the queue (up to
// admission.max_requeues times) and shrinks that backend's learned limit.
// Observes spillway_queue_wait_seconds and counts
// spillway_admission_requeues_total.
#pragma once

#include "admission/admission_queue.h"
#include "admission/slot_source.h"
#include "metrics/registry.h"

namespace spillway::admission {

class QueueSlotSource final : public SlotSource {
 public:
  QueueSlotSource(uint32_t no_backend_retry_after_seconds, uint32_t max_requeues, metrics::Registry& registry);
  std::optional<SlotResult> tryNow(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                   const EarlierAttempts& earlier) override;
  common::Awaitable<SlotResult> wait(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                     const EarlierAttempts& earlier) override;
  bool mayRequeue(const pipeline::RequestContext& ctx) const override;
  bool requeueAfterBusy(pipeline::RequestContext& ctx, upstream::Backend& backend) override;
  bool answerInsteadOfBusy(pipeline::RequestContext& ctx, uint32_t busy_retry_after) override;
  void released(const pipeline::PoolRoute& pool, const upstream::Backend& backend) override;

 private:
  AdmissionQueue::Ask ask(pipeline::RequestContext& ctx, const balance::PickContext& pick) const;
  // The queue's answer as the attempt loop's.
  SlotResult settle(pipeline::RequestContext& ctx, AdmissionQueue::Ticket& ticket, const EarlierAttempts& earlier);
  // A time waited in the queue: the request's total and the histogram.
  void addWait(pipeline::RequestContext& ctx, AdmissionQueue::Clock::duration waited);

  const uint32_t no_backend_retry_after_;
  const uint32_t max_requeues_;
  metrics::Family<metrics::Histogram>& queue_wait_;
  metrics::Family<metrics::Counter>& requeues_;
};

}  // namespace spillway::admission
