// The pool's slot source (pipeline/slot_source.h), chosen from config:
//   queue_slot_source     admission on (the default): the pool's gateway
//                         queue — strict priority, fair shares, deadlines,
//                         shedding with 429 + Retry-After, degraded answers
//                         instead of sheds for degraded classes
//   balancer_slot_source  admission.disabled: the balancer's pick, 503 when
//                         nobody can take the request
// Either may answer a request that gets no backend from the stale cache.
#pragma once

#include "pipeline/slot_source.h"

namespace spillway::metrics {
class Registry;
}
namespace spillway::v1 {
class Config;
}

namespace spillway::admission {

using pipeline::EarlierAttempts;
using pipeline::SlotResult;
using pipeline::SlotSource;
using pipeline::SlotSourcePtr;

// The pool's slot source: the queue when `pool.queue` is set (admission
// on), else the balancer alone. Registers its metrics on `registry`.
SlotSourcePtr makeSlotSource(const pipeline::PoolRoute& pool, const v1::Config& config, metrics::Registry& registry);

}  // namespace spillway::admission
