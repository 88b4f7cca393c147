#include "admission/tick.h"

#include <spdlog/spdlog.h>

#include "admission/admission_queue.h"
#include "admission/degradation.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

void tick(const pipeline::RouteTable& routes, std::chrono::steady_clock::time_point steady_now, int64_t now_ms) {
  for (const auto& [model, pool] : routes.pools) {
    double oldest_ms = 0;
    bool refusing = false;
    if (pool.queue) {
      pool.queue->tick(steady_now, pool.backends);
      pool.queue->dispatch(*pool.balancer, pool.backends);
      oldest_ms = pool.queue->oldestWaitSeconds() * 1000;
      refusing = pool.queue->turnedAwaySinceLastAsked();
    }
    if (pool.degradation) {
      admission::DegradationSignals sig;
      sig.oldest_wait_ms = oldest_ms;
      sig.refusing = refusing;
      uint64_t requests = 0, failures = 0;
      size_t out = 0;
      for (const auto& b : pool.backends) {
        requests += b->requests();
        failures += b->failures();
        out += b->available() ? 0 : 1;
      }
      sig.error_rate = pool.degradation->errorRateSince(requests, failures);
      sig.unavailable = pool.backends.empty() ? 0 : static_cast<double>(out) / pool.backends.size();
      if (pool.degradation->evaluate(routes.config.degradation(), sig, now_ms)) {
        spdlog::warn("pool {}: automatic degradation level {} (oldest queued request {:.0f} ms, error rate "
                     "{:.2f}, backends out {:.0f} %{})",
                     model, pool.degradation->automaticLevel(), oldest_ms, sig.error_rate,
                     100 * sig.unavailable, refusing ? ", turning requests away" : "");
      }
    }
  }
}

}  // namespace spillway::admission
