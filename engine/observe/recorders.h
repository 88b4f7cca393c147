// What the engine keeps about requests across config applies, handed to
// each routing snapshot's observers (routing/route_builder): the access
// log's writer, the usage ledger the history sampler drains, and the ring
// of requests that went wrong. Any may be null (not recorded).
#pragma once

#include <memory>

#include "observe/access_log.h"
#include "observe/request_events.h"
#include "observe/tenant_usage.h"

namespace spillway::observe {

struct Recorders {
  std::shared_ptr<AccessLog> access_log;
  std::shared_ptr<UsageLedger> usage;
  std::shared_ptr<RequestEvents> events;
};

}  // namespace spillway::observe
