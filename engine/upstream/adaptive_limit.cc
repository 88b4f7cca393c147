#include "upstream/adaptive_limit.h"
#include "common/mutex.h"

#include <algorithm>
#include <cmath>

namespace spillway::upstream {

namespace {
constexpr uint32_t kTokenWindow = 64;     // samples per ms-per-token window
constexpr double kSlackMs = 5;            // waits this close to the baseline never count as queueing
constexpr int64_t kOverloadGapMs = 100;   // one cut per burst of refusals
double windowMin(double a, double b) { return a < 0 ? b : b < 0 ? a : std::min(a, b); }
}  // namespace

void AdaptiveLimit::configure(const Settings& s) {
  common::MutexLock lock(mu_);
  settings_ = s;
  settings_.min = std::max<uint32_t>(1, s.min);
  settings_.max = std::max(settings_.min, s.max);
  if (!configured_) {
    configured_ = true;
    limit_.store(std::clamp(s.initial, settings_.min, settings_.max), std::memory_order_relaxed);
    // No probe at start: traffic may arrive at once (a probe would serve it
    // at 2). The first samples give a baseline; the periodic probe corrects
    // it if they were already queued.
  } else if (probing_) {
    saved_limit_ = std::clamp(saved_limit_, settings_.min, settings_.max);
  } else {
    setLimit(limit());
  }
}

void AdaptiveLimit::setLimit(uint32_t v) {
  limit_.store(std::clamp(v, settings_.min, settings_.max), std::memory_order_relaxed);
}

void AdaptiveLimit::startProbe() {
  probing_ = true;
  probe_n_ = 0;
  probe_min_ = -1;
  saved_limit_ = limit();
  limit_.store(std::min(saved_limit_, std::max(settings_.min, kProbeLimit)), std::memory_order_relaxed);
}

bool AdaptiveLimit::probing() const {
  common::MutexLock lock(mu_);
  return probing_;
}

double AdaptiveLimit::baselineMs() const {
  common::MutexLock lock(mu_);
  return baseline_;
}

double AdaptiveLimit::fastestMsPerToken() const { return fastest_ms_per_token_.load(std::memory_order_relaxed); }

void AdaptiveLimit::onTokenRate(double ms_per_token) {
  common::MutexLock lock(mu_);
  tokenRateLocked(ms_per_token);
}

void AdaptiveLimit::onSample(double waiting_ms, int64_t in_flight, double total_ms, double reported_waiting) {
  common::MutexLock lock(mu_);
  sampleLocked(waiting_ms, in_flight, total_ms, reported_waiting);
}

bool AdaptiveLimit::tryFinished(double ms_per_token, double waiting_ms, int64_t in_flight, double total_ms,
                                double reported_waiting) {
  if (!mu_.tryLock()) return false;
  if (ms_per_token >= 0) tokenRateLocked(ms_per_token);
  sampleLocked(waiting_ms, in_flight, total_ms, reported_waiting);
  mu_.unlock();
  return true;
}

void AdaptiveLimit::tokenRateLocked(double ms_per_token) {
  if (!(ms_per_token >= 0)) return;
  tok_now_ = tok_now_ < 0 ? ms_per_token : std::min(tok_now_, ms_per_token);
  if (++tok_n_ >= kTokenWindow) {
    tok_prev_ = tok_now_;
    tok_now_ = -1;
    tok_n_ = 0;
  }
  const double m = windowMin(tok_now_, tok_prev_);
  fastest_ms_per_token_.store(m < 0 ? 0 : m, std::memory_order_relaxed);
}

void AdaptiveLimit::sampleLocked(double waiting_ms, int64_t in_flight, double total_ms, double reported_waiting) {
  if (!(waiting_ms >= 0)) return;
  if (total_ms >= 0) mean_total_ms_ = mean_total_ms_ <= 0 ? total_ms : 0.9 * mean_total_ms_ + 0.1 * total_ms;
  if (probing_) {
    // Only requests dispatched at the probe's concurrency measure an
    // unloaded server; the ones still draining from before do not.
    if (in_flight > static_cast<int64_t>(limit())) return;
    probe_min_ = probe_min_ < 0 ? waiting_ms : std::min(probe_min_, waiting_ms);
    if (++probe_n_ < kProbeSamples) return;
    baseline_ = probe_min_;
    probing_ = false;
    since_probe_ = 0;
    setLimit(saved_limit_);
    round_n_ = 0;
    round_min_ = -1;
    round_reported_min_ = -1;
    round_saturated_ = false;
    return;
  }
  if (++since_probe_ >= kProbeEvery) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_probe_ >= std::chrono::milliseconds(settings_.probe_interval_ms)) {
      last_probe_ = now;
      startProbe();
      return;
    }
  }
  baseline_ = baseline_ < 0 ? waiting_ms : std::min(baseline_, waiting_ms);
  const uint32_t current = limit();
  round_min_ = round_min_ < 0 ? waiting_ms : std::min(round_min_, waiting_ms);
  if (reported_waiting >= 0) {
    round_reported_min_ = round_reported_min_ < 0 ? reported_waiting : std::min(round_reported_min_, reported_waiting);
  }
  if (in_flight >= static_cast<int64_t>(current)) round_saturated_ = true;
  if (++round_n_ < std::max<uint32_t>(4, current)) return;
  const double slack = std::max(kSlackMs, 0.5 * mean_total_ms_ / current);
  // The backend's own word on its queue, when it gives it; else whether
  // even the quickest request of the round waited.
  const bool queueing = round_reported_min_ >= 0 ? round_reported_min_ > 0
                                                 : round_min_ > baseline_ * settings_.tolerance + slack;
  if (!round_saturated_) {
    // Not filled: nothing learned about the limit.
  } else if (queueing) {
    slow_start_ = false;
    cuts_.fetch_add(1, std::memory_order_relaxed);
    setLimit(current > 1 ? current - 1 : 1);
  } else {
    setLimit(slow_start_ ? current * 2 : current + 1);
  }
  round_n_ = 0;
  round_min_ = -1;
  round_reported_min_ = -1;
  round_saturated_ = false;
}

void AdaptiveLimit::onOverload(int64_t now_ms) {
  common::MutexLock lock(mu_);
  if (now_ms - last_overload_ms_ < kOverloadGapMs) return;
  last_overload_ms_ = now_ms;
  slow_start_ = false;
  cuts_.fetch_add(1, std::memory_order_relaxed);
  if (probing_) {
    saved_limit_ = std::max(settings_.min, static_cast<uint32_t>(std::floor(saved_limit_ * settings_.backoff_ratio)));
    return;
  }
  setLimit(static_cast<uint32_t>(std::floor(limit() * settings_.backoff_ratio)));
  round_n_ = 0;
  round_min_ = -1;
  round_reported_min_ = -1;
  round_saturated_ = false;
}

}  // namespace spillway::upstream
