#include "upstream/backend_gauges.h"

namespace spillway::upstream {

std::vector<metrics::Registry::Registration> registerBackendGauges(metrics::Registry& registry, BackendList backends) {
  std::vector<metrics::Registry::Registration> regs;
  // One callback per per-backend figure, each over the backends now.
  auto perBackend = [&](std::string name, std::string help, auto value) {
    regs.push_back(registry.scopedCallbackGauge(std::move(name), std::move(help), {"backend"}, [backends, value] {
      std::vector<std::pair<metrics::Labels, double>> out;
      for (const auto& b : *backends()) out.push_back({{b->name()}, value(*b)});
      return out;
    }));
  };
  perBackend("spillway_backend_up", "1 when the backend is healthy, else 0.",
             [](const upstream::Backend& b) { return b.healthy() ? 1.0 : 0.0; });
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_backend_state",
      "1 for the backend's current state (up, down, draining, ejected, backing_off, cooling_down), 0 for the others.",
      {"backend", "state"}, [backends] {
        std::vector<std::pair<metrics::Labels, double>> out;
        for (const auto& b : *backends()) {
          const std::string_view now = b->state();
          for (std::string_view st : upstream::Backend::kStates) {
            out.push_back({{b->name(), std::string(st)}, st == now ? 1.0 : 0.0});
          }
        }
        return out;
      }));
  perBackend("spillway_backend_weight",
             "The weight the balancer uses now (configured or operator override, ramped during a slow start; 0 when "
             "out of rotation).",
             [](const upstream::Backend& b) { return static_cast<double>(b.effectiveWeight()); });
  perBackend("spillway_backend_in_flight", "Requests in flight to each backend.",
             [](const upstream::Backend& b) { return static_cast<double>(b.inFlight()); });
  perBackend("spillway_backend_latency_ewma_seconds", "Exponentially weighted mean request latency (about the last 20).",
             [](const upstream::Backend& b) { return b.ewmaLatencySeconds(); });
  perBackend("spillway_backend_latency_per_token_ewma_seconds",
             "Exponentially weighted mean latency per output token (what latency_weighted balances on).",
             [](const upstream::Backend& b) { return b.ewmaMsPerToken() / 1000.0; });
  perBackend("spillway_backend_ejections", "Automatic ejections by passive outlier detection since the backend was configured.",
             [](const upstream::Backend& b) { return static_cast<double>(b.ejectionsTotal()); });
  perBackend("spillway_backend_back_offs", "Times the backend was backed off after answering 429 or 503, since it was configured.",
             [](const upstream::Backend& b) { return static_cast<double>(b.backOffs()); });
  perBackend("spillway_backend_consecutive_failures", "Failed answers in a row (outlier detection's count).",
             [](const upstream::Backend& b) { return static_cast<double>(b.consecutiveFailures()); });
  perBackend("spillway_backend_concurrency_limit",
             "Requests the backend may have in flight: max_concurrency where configured, else the limit admission "
             "learned (0: none).",
             [](const upstream::Backend& b) { return static_cast<double>(b.concurrencyLimit()); });
  regs.push_back(registry.scopedCallbackGauge(
      "spillway_upstream_connections", "Open upstream connections, by backend and state (idle, active).",
      {"backend", "state"}, [backends] {
        std::vector<std::pair<metrics::Labels, double>> out;
        for (const auto& b : *backends()) {
          double open = static_cast<double>(b->open_connections.load());
          double idle = static_cast<double>(b->idle_connections.load());
          out.push_back({{b->name(), "idle"}, idle});
          out.push_back({{b->name(), "active"}, open - idle});
        }
        return out;
      }));
  return regs;
}

}  // namespace spillway::upstream
