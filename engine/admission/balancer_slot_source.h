// Slots from the balancer alone (admission.disabled): the pool's policy
// picks among backends under their concurrency limits, or the request is
// told 503 at once (server_busy when all are at their limit,
// no_healthy_backend when none can serve; a stale cached answer first).
// Nothing waits and busy answers are not requeued.
#pragma once

#include "admission/slot_source.h"

namespace spillway::admission {

class BalancerSlotSource final : public SlotSource {
 public:
  explicit BalancerSlotSource(uint32_t retry_after_seconds) : retry_after_(retry_after_seconds) {}
  std::optional<SlotResult> tryNow(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                   const EarlierAttempts& earlier) override;
  common::Awaitable<SlotResult> wait(pipeline::RequestContext& ctx, const balance::PickContext& pick,
                                     const EarlierAttempts& earlier) override;
  bool mayRequeue(const pipeline::RequestContext&) const override { return false; }
  bool requeueAfterBusy(pipeline::RequestContext&, upstream::Backend&) override { return false; }
  bool answerInsteadOfBusy(pipeline::RequestContext&, uint32_t) override { return false; }

 private:
  const uint32_t retry_after_;
};

}  // namespace spillway::admission
