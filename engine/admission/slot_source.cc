#include "admission/slot_source.h"

#include "admission/admission_queue.h"
#include "admission/balancer_slot_source.h"
#include "admission/queue_slot_source.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

SlotSourcePtr makeSlotSource(const pipeline::PoolRoute& pool, const v1::Config& config, metrics::Registry& registry) {
  const uint32_t retry_after = config.server().retry_after_seconds();
  if (pool.queue) {
    return std::make_unique<QueueSlotSource>(retry_after, config.admission().max_requeues(), registry);
  }
  return std::make_unique<BalancerSlotSource>(retry_after);
}

}  // namespace spillway::admission
