// Admission's once-a-second work over a routing table (the engine's
// sampler calls it): each pool's queue measures its service rate, sheds
// waiters no backend can serve and dispatches capacity that came back
// (back-offs ended, limits rose); each pool's automatic degradation level
// is evaluated from its oldest queued wait, error rate and backends out.
#pragma once

#include <chrono>
#include <cstdint>

namespace spillway::pipeline {
struct RouteTable;
}

namespace spillway::admission {

void tick(const pipeline::RouteTable& routes, std::chrono::steady_clock::time_point steady_now, int64_t now_ms);

}  // namespace spillway::admission
