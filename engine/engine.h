// The engine facade: what the daemon (spillwayd) and the console use. It
// owns the worker threads, the in-process simulators of sim:// backends, the
// gateway and its front listener, and the health checker.
//
// Threading: every public method may be called from any one thread (the
// caller's "control" thread); the engine's own threads never call back.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spillway/v1/config.pb.h"

namespace spillway {

namespace sim {
class SimServer;
}

struct BackendStatus {
  std::string name;
  std::string url;  // where requests go (sim:// backends show their loopback port)
  bool healthy = false;
  int64_t in_flight = 0;
  int64_t open_connections = 0;
  int64_t idle_connections = 0;
};

class Engine {
 public:
  // Validates `config`, applies defaults, starts simulators, health checks
  // and the listener. Errors name every config problem, or the bind failure.
  static absl::StatusOr<std::unique_ptr<Engine>> start(v1::Config config);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The front listener, e.g. "http://127.0.0.1:8080", and its bound port.
  std::string url() const;
  uint16_t port() const;
  // The effective config (defaults applied).
  const v1::Config& config() const;

  // Graceful drain: stop accepting, close idle connections, wait up to
  // `timeout` for requests in flight. True when all finished in time.
  bool drain(std::chrono::milliseconds timeout);
  // Stops everything now; requests still in flight are cut. Idempotent.
  void stop();

  std::string metricsText() const;
  std::vector<BackendStatus> backends() const;
  // The in-process simulator behind a sim:// backend, or nullptr.
  sim::SimServer* simulator(const std::string& backend_name) const;

 private:
  Engine();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway
