// Active health checks: every backend is probed with GET <path> on its own
// schedule; after `unhealthy_threshold` failed probes in a row it is marked
// down, after `healthy_threshold` good ones it is marked up again. Backends
// whose path is "none" are never probed.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "upstream/backend.h"

namespace spillway::upstream {

class HealthChecker {
 public:
  // Probes run on `ioc`. `tls_for` gives each https backend's TLS context
  // (its own verification settings); the contexts must outlive the checker.
  using TlsFor = std::function<boost::asio::ssl::context*(const Backend&)>;
  HealthChecker(boost::asio::io_context& ioc, std::vector<BackendPtr> backends, TlsFor tls_for);
  ~HealthChecker();

  void start();
  // Stops probing; thread-safe. Probes in flight finish on their own.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace spillway::upstream
