// Passive outlier detection and back-off, fed with the result of every
// upstream attempt:
//  - `consecutive_failures` failures in a row (5xx other than 503, broken
//    answers, failed connects) eject the backend for base_ejection_ms times
//    the number of its automatic ejections (capped at max_ejection_ms; the
//    count resets once it served five minutes without one); it returns
//    through the usual slow start;
//  - a refused connect to a backend without active health checks ejects it
//    at once for base_ejection_ms (with health checks, it is marked down
//    and the checker brings it back);
//  - a 429 or 503 backs the backend off for its Retry-After (at most 300 s)
//    or busy_cooldown_ms without one.
// Never more than max_ejection_percent of a pool is out (ejected or backing
// off) at once: past that, failures are only counted.
//
// Thread-safe: called from every worker; state lives in the backends'
// atomics, events in the shared log.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "spillway/v1/config.pb.h"
#include "upstream/backend.h"
#include "upstream/backend_events.h"

namespace spillway::upstream {

enum class AttemptResult {
  kSuccess,
  kFailure,        // 5xx (not 503), broken answer, timeout
  kConnectFailed,  // refused or unreachable
  kBusy,           // 429 or 503
};

class OutlierDetector {
 public:
  // `settings` and the other values with defaults applied.
  OutlierDetector(const v1::OutlierDetection& settings, uint32_t slow_start_ms, uint32_t busy_cooldown_ms,
                  std::shared_ptr<BackendEvents> events);

  // After an attempt on `b`, one of `pool`'s backends. `retry_after` is the
  // header's text (seconds) when the backend sent one; `detail` describes
  // a failure for the event log.
  void onAttempt(Backend& b, AttemptResult result, std::span<const BackendPtr> pool, int64_t now_ms,
                 std::string_view retry_after = {}, std::string_view detail = {});

  // With admission on, a busy backend backs off even when that leaves its
  // pool with nobody: requests wait in the gateway queue for it instead of
  // being sent back into the refusal (without admission, half the pool
  // stays in, as for ejections, so someone answers).
  void setBusyBackOffUncapped(bool on) { busy_uncapped_ = on; }

 private:
  bool mayTakeOut(const Backend& b, std::span<const BackendPtr> pool) const;

  const v1::OutlierDetection settings_;
  const int64_t slow_start_ms_;
  const int64_t busy_cooldown_ms_;
  std::shared_ptr<BackendEvents> events_;
  bool busy_uncapped_ = false;
};

}  // namespace spillway::upstream
