#include "upstream/outlier_detector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/strings.h"

namespace spillway::upstream {

namespace {
constexpr int64_t kMaxRetryAfterMs = 300'000;
constexpr int64_t kGoodAfterMs = 300'000;  // an ejection count resets after this long without one
}  // namespace

OutlierDetector::OutlierDetector(const v1::OutlierDetection& settings, uint32_t slow_start_ms,
                                 uint32_t busy_cooldown_ms, std::shared_ptr<BackendEvents> events)
    : settings_(settings), slow_start_ms_(slow_start_ms), busy_cooldown_ms_(busy_cooldown_ms),
      events_(std::move(events)) {}

bool OutlierDetector::mayTakeOut(const Backend& b, std::span<const BackendPtr> pool) const {
  if (pool.empty()) return true;
  size_t out = 0;
  bool member = false;
  for (const auto& p : pool) {
    member |= p.get() == &b;
    if (p.get() != &b && (p->ejected() || p->backingOff())) ++out;
  }
  if (!member) return true;
  // With this one out too, the share must stay within the cap.
  return (out + 1) * 100 <= pool.size() * settings_.max_ejection_percent();
}

void OutlierDetector::onAttempt(Backend& b, AttemptResult result, std::span<const BackendPtr> pool, int64_t now_ms,
                                std::string_view retry_after, std::string_view detail) {
  if (result == AttemptResult::kBusy) {
    b.noteResult(false);  // busy is not broken
    int64_t ms = busy_cooldown_ms_;
    int64_t seconds = 0;
    if (!retry_after.empty()) {
      auto [p, ec] = std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
      if (ec == std::errc() && seconds >= 0) ms = std::min(kMaxRetryAfterMs, seconds * 1000);
    }
    if (ms <= 0 || b.backingOff() || (!busy_uncapped_ && !mayTakeOut(b, pool))) return;
    b.backOff(now_ms + ms);
    if (events_) {
      events_->add({now_ms, b.name(), "backed_off",
                    retry_after.empty() ? common::strCat("answered busy (", detail, ")")
                                        : common::strCat("answered busy with Retry-After: ", retry_after),
                    now_ms + ms});
    }
    return;
  }
  if (result == AttemptResult::kSuccess) {
    b.noteResult(false);
    return;
  }
  const uint32_t run = b.noteResult(true);
  if (settings_.disabled() || b.ejected()) return;
  const bool no_checks = b.config().health_check().path() == "none";
  const bool connect_now = result == AttemptResult::kConnectFailed && no_checks;
  if (!connect_now && run < settings_.consecutive_failures()) return;
  if (!mayTakeOut(b, pool)) return;
  if (b.autoEjections() > 0 && now_ms - b.ejectedUntilMs() > kGoodAfterMs) b.resetAutoEjections();
  const uint32_t n = b.countAutoEjection();
  const int64_t ms = std::min<int64_t>(settings_.max_ejection_ms(), int64_t{settings_.base_ejection_ms()} * n);
  b.eject(now_ms, now_ms + ms, slow_start_ms_);
  b.noteResult(false);  // a fresh count after it returns
  std::string reason = connect_now ? common::strCat("connect failed (", detail, ")")
                                   : common::strCat(run, " failures in a row (last: ", detail, ")");
  spdlog::warn("backend {} ejected for {} ms: {}", b.name(), ms, reason);
  if (events_) events_->add({now_ms, b.name(), "ejected", std::move(reason), now_ms + ms});
}

}  // namespace spillway::upstream
