// Runtime state of one upstream backend, shared by every worker thread:
// health, drain and ejection, weight, in-flight accounting, passive outcome
// statistics and the resolved address. The immutable config rides along.
// All methods are thread-safe (atomics; the last error text has a mutex,
// taken only on failures and by readers of the state).
//
// Weight: the balancer reads weight(), the configured weight or the
// operator's override, scaled down while the backend cools down after an
// ejection (slow start). tick() advances that ramp; the engine calls it
// once a second with the wall clock, tests with their own.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/url.h"
#include "upstream/adaptive_limit.h"
#include "upstream/fleet_share.h"
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
  // Healthy, not drained, not ejected and not backing off: may take new
  // requests.
  bool available() const { return healthy() && !draining() && !ejected() && !backingOff(); }
  // One word for all of it, in this order of precedence: "down" (health),
  // "draining", "ejected", "backing_off" (it answered 429/503),
  // "cooling_down" (slow start), "up".
  std::string_view state() const {
    return !healthy()      ? "down"
           : draining()    ? "draining"
           : ejected()     ? "ejected"
           : backingOff()  ? "backing_off"
           : coolingDown() ? "cooling_down"
                           : "up";
  }
  static constexpr std::string_view kStates[] = {"up", "down", "draining", "ejected", "backing_off", "cooling_down"};

  // Back-off after the backend said it is busy (429, or 503 with or without
  // Retry-After): no new requests until `until_ms` (wall clock). tick()
  // ends it; a later until never shortens a running back-off.
  void backOff(int64_t until_ms);
  // Reads the wall clock only while a back-off is set, so it ends on time
  // even between ticks.
  bool backingOff() const {
    return backing_off_.load(std::memory_order_relaxed) &&
           common::wallClockMs() < back_off_until_ms_.load(std::memory_order_relaxed);
  }
  int64_t backOffUntilMs() const { return back_off_until_ms_.load(std::memory_order_relaxed); }
  uint64_t backOffs() const { return back_offs_.load(std::memory_order_relaxed); }

  // Passive outlier detection's bookkeeping: failures in a row (reset by a
  // success), and how many times it was ejected automatically.
  // noteResult() returns the run of failures after this one.
  uint32_t noteResult(bool failed);
  uint32_t consecutiveFailures() const { return consecutive_failures_.load(std::memory_order_relaxed); }
  uint32_t autoEjections() const { return auto_ejections_.load(std::memory_order_relaxed); }
  // Counts an automatic ejection; returns the count including this one.
  uint32_t countAutoEjection() {
    ejections_total_.fetch_add(1, std::memory_order_relaxed);
    return auto_ejections_.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  uint64_t ejectionsTotal() const { return ejections_total_.load(std::memory_order_relaxed); }
  void resetAutoEjections() { auto_ejections_.store(0, std::memory_order_relaxed); }

  // Operator ejection: out of rotation until `until_ms` (wall clock), then
  // back with its weight ramping up over `slow_start_ms`. until_ms <= now
  // readmits an ejected backend at once (still with the ramp), and leaves
  // one that is not ejected alone.
  void eject(int64_t now_ms, int64_t until_ms, int64_t slow_start_ms);
  bool ejected() const { return ejected_.load(std::memory_order_relaxed); }
  int64_t ejectedUntilMs() const { return ejected_until_ms_.load(std::memory_order_relaxed); }
  bool coolingDown() const { return cooling_; }
  // Ends ejections that are due and advances the slow-start ramp.
  void tick(int64_t now_ms);

  // Weights. The override (-1: none) replaces the configured weight until
  // cleared or the backend's config changes.
  uint32_t configuredWeight() const { return config_.weight(); }
  int32_t weightOverride() const { return weight_override_.load(std::memory_order_relaxed); }
  void setWeightOverride(int32_t weight);
  // The base weight, ramped while cooling down.
  uint32_t weight() const { return weight_.load(std::memory_order_relaxed); }
  // What the balancer uses now: weight(), or 0 while not available.
  uint32_t effectiveWeight() const { return available() ? weight() : 0; }

  // Keeps an object (the in-process simulator behind a sim:// backend)
  // alive as long as this backend is referenced by any routing table or
  // request in flight.
  void holdAlive(std::shared_ptr<void> keep) { keep_alive_ = std::move(keep); }
  // The replicas sharing this backend (set once, before it takes requests):
  // a configured max_concurrency is divided among them.
  void shareWith(std::shared_ptr<const FleetShare> share) { share_ = std::move(share); }

  // Load the backend reports itself (its /metrics, read by LoadScraper),
  // valid until `until_ms` (wall clock).
  struct ReportedLoad {
    double running = 0;
    double waiting = 0;
    double cache_usage = -1;  // 0..1, -1 when not reported
    int64_t until_ms = 0;     // 0: never reported
  };
  void setReportedLoad(double running, double waiting, double cache_usage, int64_t until_ms);
  ReportedLoad reportedLoad() const;
  // What load-aware policies count: Spillway's in-flight, or the backend's
  // own running + waiting when it reported recently and that is more.
  int64_t load() const {
    const int64_t own = inFlight();
    const int64_t until = reported_until_ms_.load(std::memory_order_relaxed);
    if (until == 0 || common::wallClockMs() >= until) return own;
    return std::max(own, reported_total_.load(std::memory_order_relaxed));
  }

  // Reserves one request slot; false when the concurrency limit is reached.
  bool tryAcquire();
  // The limit tryAcquire() enforces: max_concurrency where configured (this
  // replica's slice of it when several share the backend), else the learned
  // limit while admission learns (setLearning), else 0 (none).
  int64_t concurrencyLimit() const;
  bool learnsLimit() const { return config_.max_concurrency() == 0 && learning_.load(std::memory_order_relaxed); }
  void setLearning(bool on) { learning_.store(on, std::memory_order_relaxed); }
  AdaptiveLimit& adaptiveLimit() { return adaptive_limit_; }
  const AdaptiveLimit& adaptiveLimit() const { return adaptive_limit_; }
  void release();
  int64_t inFlight() const { return in_flight_.load(std::memory_order_relaxed); }

  // Passive statistics: every finished request through this backend, and
  // the last failure seen (with its wall-clock time).
  // `output_tokens` (0 when unknown) feeds the latency-per-token EWMA.
  void recordOutcome(bool failed, double seconds, uint32_t output_tokens = 0);
  void noteError(int64_t now_ms, std::string_view message);
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  double ewmaLatencySeconds() const { return ewma_latency_.load(std::memory_order_relaxed); }
  // EWMA of milliseconds per output token (requests with a token count only;
  // 0 until the first one).
  double ewmaMsPerToken() const { return ewma_ms_per_token_.load(std::memory_order_relaxed); }
  std::pair<int64_t, std::string> lastError() const;

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
  std::shared_ptr<const FleetShare> share_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> learning_{false};
  AdaptiveLimit adaptive_limit_;

  // Weight and ejection; changed under state_mu_, read lock-free.
  void recomputeWeight(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  common::Mutex state_mu_;
  std::atomic<bool> ejected_{false};
  std::atomic<int64_t> ejected_until_ms_{0};
  std::atomic<bool> cooling_{false};
  int64_t cool_from_ms_ ABSL_GUARDED_BY(state_mu_) = 0;
  int64_t slow_start_ms_ ABSL_GUARDED_BY(state_mu_) = 0;
  int64_t last_now_ms_ ABSL_GUARDED_BY(state_mu_) = 0;  // the latest clock seen
  std::atomic<int32_t> weight_override_{-1};
  std::atomic<uint32_t> weight_;

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<double> ewma_latency_{0};
  std::atomic<double> ewma_ms_per_token_{0};
  std::atomic<bool> backing_off_{false};
  std::atomic<int64_t> back_off_until_ms_{0};
  std::atomic<uint64_t> back_offs_{0};
  std::atomic<uint32_t> consecutive_failures_{0};
  std::atomic<uint32_t> auto_ejections_{0};
  std::atomic<uint64_t> ejections_total_{0};
  std::atomic<int64_t> reported_until_ms_{0};
  std::atomic<int64_t> reported_total_{0};   // running + waiting, rounded
  std::atomic<double> reported_running_{0};
  std::atomic<double> reported_waiting_{0};
  std::atomic<double> reported_cache_{-1};
  mutable common::Mutex error_mu_;
  int64_t last_error_ms_ ABSL_GUARDED_BY(error_mu_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(error_mu_);
};

using BackendPtr = std::shared_ptr<Backend>;

}  // namespace spillway::upstream
