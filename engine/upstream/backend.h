// Runtime state of one upstream backend, shared by every worker thread:
// health, in-flight accounting, and the resolved address. The immutable
// config rides along. All methods are thread-safe (atomics).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/url.h"
#include "spillway/v1/config.pb.h"

namespace spillway::upstream {

class Backend {
 public:
  // `url` is where requests go (for sim:// backends, the in-process
  // simulator's loopback address). `id` is unique for the engine's lifetime.
  Backend(uint64_t id, v1::Backend config, common::Url url, std::string api_key);

  uint64_t id() const { return id_; }
  const std::string& name() const { return config_.name(); }
  const v1::Backend& config() const { return config_; }
  const common::Url& url() const { return url_; }
  // Sent upstream as a bearer token; empty for none. Never log it.
  const std::string& apiKey() const { return api_key_; }

  // Health as decided by the health checker and by passive failures.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  void setHealthy(bool h) { healthy_.store(h, std::memory_order_relaxed); }

  // Drained backends get no new requests; those in flight finish.
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  void setDraining(bool d) { draining_.store(d, std::memory_order_relaxed); }
  // Healthy and not drained: may take new requests.
  bool available() const { return healthy() && !draining(); }

  // Keeps an object (the in-process simulator behind a sim:// backend)
  // alive as long as this backend is referenced by any routing table or
  // request in flight.
  void holdAlive(std::shared_ptr<void> keep) { keep_alive_ = std::move(keep); }

  // Reserves one request slot; false when max_concurrency is reached.
  bool tryAcquire();
  void release();
  int64_t inFlight() const { return in_flight_.load(std::memory_order_relaxed); }

  // Connection accounting, for the pool gauges.
  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> idle_connections{0};

 private:
  const uint64_t id_;
  const v1::Backend config_;
  const common::Url url_;
  const std::string api_key_;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> draining_{false};
  std::shared_ptr<void> keep_alive_;
  std::atomic<int64_t> in_flight_{0};
};

using BackendPtr = std::shared_ptr<Backend>;

}  // namespace spillway::upstream
