#include "upstream/backend.h"
#include "common/mutex.h"

#include <algorithm>

namespace spillway::upstream {

Backend::Backend(uint64_t id, v1::Backend config, common::Url url, std::string api_key)
    : id_(id), config_(std::move(config)), url_(std::move(url)), api_key_(std::move(api_key)),
      weight_(config_.weight()) {}

void Backend::eject(int64_t now_ms, int64_t until_ms, int64_t slow_start_ms) {
  common::MutexLock lock(state_mu_);
  if (until_ms <= now_ms && !ejected()) return;  // readmitting one that is in: nothing to do
  slow_start_ms_ = slow_start_ms;
  ejected_until_ms_.store(until_ms, std::memory_order_relaxed);
  ejected_.store(until_ms > now_ms, std::memory_order_relaxed);
  cooling_.store(false, std::memory_order_relaxed);
  if (until_ms <= now_ms) {
    cool_from_ms_ = now_ms;
    cooling_.store(slow_start_ms > 0, std::memory_order_relaxed);
  }
  recomputeWeight(now_ms);
}

void Backend::backOff(int64_t until_ms) {
  int64_t cur = back_off_until_ms_.load(std::memory_order_relaxed);
  while (cur < until_ms && !back_off_until_ms_.compare_exchange_weak(cur, until_ms, std::memory_order_relaxed)) {
  }
  if (!backing_off_.exchange(true, std::memory_order_relaxed)) back_offs_.fetch_add(1, std::memory_order_relaxed);
}

uint32_t Backend::noteResult(bool failed) {
  if (!failed) {
    if (consecutive_failures_.load(std::memory_order_relaxed) != 0) consecutive_failures_.store(0, std::memory_order_relaxed);
    return 0;
  }
  return consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Backend::tick(int64_t now_ms) {
  if (backingOff() && now_ms >= back_off_until_ms_.load(std::memory_order_relaxed)) {
    backing_off_.store(false, std::memory_order_relaxed);
  }
  if (!ejected() && !coolingDown()) return;
  common::MutexLock lock(state_mu_);
  if (ejected() && now_ms >= ejected_until_ms_.load(std::memory_order_relaxed)) {
    ejected_.store(false, std::memory_order_relaxed);
    cool_from_ms_ = now_ms;
    cooling_.store(slow_start_ms_ > 0, std::memory_order_relaxed);
  }
  recomputeWeight(now_ms);
}

void Backend::setWeightOverride(int32_t weight) {
  common::MutexLock lock(state_mu_);
  weight_override_.store(weight < 0 ? -1 : weight, std::memory_order_relaxed);
  recomputeWeight(last_now_ms_);
}

void Backend::recomputeWeight(int64_t now_ms) {
  last_now_ms_ = now_ms;
  const int32_t over = weight_override_.load(std::memory_order_relaxed);
  const uint32_t base = over >= 0 ? static_cast<uint32_t>(over) : config_.weight();
  uint32_t w = base;
  if (cooling_.load(std::memory_order_relaxed)) {
    const int64_t elapsed = now_ms - cool_from_ms_;
    if (elapsed >= slow_start_ms_) {
      cooling_.store(false, std::memory_order_relaxed);
    } else {
      // From a tenth of the weight up to all of it, never below 1 unless 0.
      const double share = 0.1 + 0.9 * static_cast<double>(std::max<int64_t>(0, elapsed)) /
                                     static_cast<double>(slow_start_ms_);
      w = base == 0 ? 0 : std::max<uint32_t>(1, static_cast<uint32_t>(base * share));
    }
  }
  weight_.store(w, std::memory_order_relaxed);
}

namespace {

// Exponentially weighted mean, alpha 0.1: about the last 20 samples. The
// first sample seeds it.
void ewmaAdd(std::atomic<double>& avg, double sample) {
  double cur = avg.load(std::memory_order_relaxed);
  double next;
  do {
    next = cur == 0 ? sample : cur + 0.1 * (sample - cur);
  } while (!avg.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

}  // namespace

void Backend::recordOutcome(bool failed, double seconds, uint32_t output_tokens) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (failed) failures_.fetch_add(1, std::memory_order_relaxed);
  ewmaAdd(ewma_latency_, seconds);
  if (!failed && output_tokens > 0) ewmaAdd(ewma_ms_per_token_, seconds * 1000.0 / output_tokens);
}

void Backend::noteError(int64_t now_ms, std::string_view message) {
  common::MutexLock lock(error_mu_);
  last_error_ms_ = now_ms;
  last_error_.assign(message);
}

std::pair<int64_t, std::string> Backend::lastError() const {
  common::MutexLock lock(error_mu_);
  return {last_error_ms_, last_error_};
}

void Backend::setReportedLoad(double running, double waiting, double cache_usage, int64_t until_ms) {
  reported_running_.store(running, std::memory_order_relaxed);
  reported_waiting_.store(waiting, std::memory_order_relaxed);
  reported_cache_.store(cache_usage, std::memory_order_relaxed);
  reported_total_.store(static_cast<int64_t>(running + waiting + 0.5), std::memory_order_relaxed);
  reported_until_ms_.store(until_ms, std::memory_order_relaxed);
}

Backend::ReportedLoad Backend::reportedLoad() const {
  return {reported_running_.load(std::memory_order_relaxed), reported_waiting_.load(std::memory_order_relaxed),
          reported_cache_.load(std::memory_order_relaxed), reported_until_ms_.load(std::memory_order_relaxed)};
}

int64_t Backend::concurrencyLimit() const {
  if (config_.max_concurrency() > 0) return share_ ? share_->slice(config_.max_concurrency()) : config_.max_concurrency();
  return learning_.load(std::memory_order_relaxed) ? adaptive_limit_.limit() : 0;
}

bool Backend::tryAcquire() {
  const int64_t limit = concurrencyLimit();
  int64_t cur = in_flight_.load(std::memory_order_relaxed);
  do {
    if (limit > 0 && cur >= limit) return false;
  } while (!in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void Backend::release() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace spillway::upstream
