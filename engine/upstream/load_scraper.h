// Reads the load each backend reports on its Prometheus endpoint (vLLM's or
// SGLang's gauges: requests running and waiting, KV-cache usage) every
// interval_ms and stores it on the Backend, valid for max_age_ms, so the
// load-aware policies see traffic from other gateways too
// (Backend::load()). A backend whose endpoint fails or has none of the
// gauges simply keeps Spillway's own count. Off unless
// upstream.load_metrics.path is set.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "spillway/v1/config.pb.h"
#include "upstream/health_checker.h"

namespace spillway::upstream {

struct LoadReading {
  double running = 0;
  double waiting = 0;
  double cache_usage = -1;  // -1: not reported
};

// The gauges in a Prometheus text exposition, summed over label sets (one
// server may report per model); nullopt when neither running nor waiting
// is there.
std::optional<LoadReading> parseLoadMetrics(std::string_view text);

class LoadScraper {
 public:
  LoadScraper(boost::asio::io_context& ioc, std::vector<BackendPtr> backends, v1::LoadMetrics settings,
              HealthChecker::TlsFor tls_for);
  ~LoadScraper();
  void start();
  // Stops reading; thread-safe. Reads in flight finish on their own.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace spillway::upstream
