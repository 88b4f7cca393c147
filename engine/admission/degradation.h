// Graceful degradation: the article's three levels, per pool.
//   1  answer from the cache — an expired entry within cache's stale grace
//      (x-spillway-cache: stale) — else the model's configured default
//      answer; without either, serve normally;
//   2  simplified output: max_tokens capped, a configured "answer briefly"
//      instruction added to chat requests, or the request sent to a cheaper
//      fallback model's pool;
//   3  emergency: a static "service busy, retry later" answer — 429 with
//      Retry-After in OpenAI's error shape, or a small HTML page for
//      browsers (Accept: text/html).
// A pool's level applies by class: sheddable requests get the level,
// standard one less, critical two less (sheddable degrades first, critical
// last). Degraded answers carry x-spillway-degraded: LEVEL (200s for levels
// 1 and 2). Requests whose caller parses the answer (tools, functions,
// response_format other than text) get neither a default answer nor a
// rewrite: a truncated JSON is worse than a 429.
//
// The level is automatic (degradation.automatic) from live signals, each
// against its thresholds: the age of the pool's oldest queued request
// (wait_thresholds_ms), its upstream error rate over the last second
// (error_rate_thresholds) and the share of its backends out of rotation
// (unavailable_thresholds); and while the queue turns requests away for
// want of time, level 1 at least (at once, with the first refusal). The level wanted is the highest any signal
// asks for: up at once, down one level only after min_dwell_ms at the
// current level and once every signal fell below its threshold × exit_ratio
// (hysteresis: a signal hovering at a threshold does not flap). An
// operator's pin overrides it until released.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "admission/priority.h"
#include "common/mutex.h"
#include "pipeline/stage.h"
#include "spillway/v1/config.pb.h"

namespace spillway::admission {

inline constexpr int kMaxLevel = 3;

// The level a request of class `p` gets when its pool is at `pool_level`.
int classLevel(int pool_level, Priority p);

// What the automatic level is decided from, once a second.
struct DegradationSignals {
  double oldest_wait_ms = 0;
  double error_rate = 0;   // 0..1
  double unavailable = 0;  // 0..1 of the pool's backends
  // The queue turned requests away for want of time since the last
  // evaluation (at its door, or at their objective): level 1 at least.
  bool refusing = false;
};

// One pool's level. Outlives config applies (the engine hands it on), so a
// pin survives them. Thread-safe.
class PoolDegradation {
 public:
  int level() const {
    const int p = pinned_.load(std::memory_order_relaxed);
    return p >= 0 ? p : automatic_.load(std::memory_order_relaxed);
  }
  int pinned() const { return pinned_.load(std::memory_order_relaxed); }
  int automaticLevel() const { return automatic_.load(std::memory_order_relaxed); }
  // Pins a level (0..3); -1 releases the pin.
  void pin(int level) { pinned_.store(level, std::memory_order_relaxed); }
  // The queue is turning a request away while the automatic level is 0:
  // level 1 now, not at the next evaluation (a refusal is the signal, and
  // its answer is decided now). True when it raised the level.
  bool raiseForRefusal(const v1::Degradation& settings, int64_t now_ms);
  // One evaluation of the automatic level; true when it changed.
  bool evaluate(const v1::Degradation& settings, const DegradationSignals& sig, int64_t now_ms);
  bool evaluate(const v1::Degradation& settings, double wait_ms, int64_t now_ms) {
    return evaluate(settings, DegradationSignals{wait_ms, 0, 0}, now_ms);
  }
  // The pool's upstream error rate since the previous call, from its
  // backends' running totals (requests and failures finished).
  double errorRateSince(uint64_t requests, uint64_t failures);
  uint64_t changes() const { return changes_.load(std::memory_order_relaxed); }
  double lastSignalMs() const { return signal_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> pinned_{-1};
  std::atomic<int> automatic_{0};
  std::atomic<uint64_t> changes_{0};
  std::atomic<double> signal_{0};
  common::Mutex mu_;
  int64_t changed_at_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_requests_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool have_totals_ ABSL_GUARDED_BY(mu_) = false;
};

// Level 1's answer for ctx's pool: a stale cached answer, else the model's
// default answer; false when there is neither. Also used when the queue
// would shed a request whose class is degraded: it gets the cheaper answer
// instead of a 429.
bool answerAtLevelOne(pipeline::RequestContext& ctx, const v1::Degradation& settings);

// A request the queue would shed (deadline, queue full) while its pool is
// degraded (level 1 or more, whatever the request's class) gets level 1's
// answer instead of a 429: true when it did (the drop is uncounted from
// the queue, ctx.error cleared).
bool degradeInsteadOfShedding(pipeline::RequestContext& ctx, DropReason reason);
// Level 1's answer for a request the queue turns away, while the pool is
// degraded — an automatic level 0 is raised to 1 by the refusal itself
// (nothing counted): true when it was answered.
bool answerDegraded(pipeline::RequestContext& ctx);

class DegradeStage final : public pipeline::Stage {
 public:
  explicit DegradeStage(const v1::Config& config);
  std::string_view name() const override { return "degrade"; }
  pipeline::Verdict process(pipeline::RequestContext& ctx) override;

 private:
  v1::Degradation settings_;
  uint32_t retry_after_ = 1;
  std::map<std::string, std::string> fallbacks_;  // model -> fallback model
};

}  // namespace spillway::admission
