#include "admission/gcra.h"

#include <algorithm>
#include <cmath>

namespace spillway::admission {

Gcra::Gcra(double amount, int64_t period_ns)
    : amount_(std::max(1.0, amount)), period_ns_(period_ns), interval_ns_(static_cast<double>(period_ns) / amount_) {}

Gcra::Decision Gcra::describe(int64_t tat, int64_t now_ns, bool allowed, double cost) const {
  Decision d;
  d.allowed = allowed;
  d.limit = amount_;
  const double backlog_ns = static_cast<double>(std::max<int64_t>(0, tat - now_ns));
  d.remaining = std::max(0.0, std::floor((static_cast<double>(period_ns_) - backlog_ns) / interval_ns_ + 1e-9));
  d.reset_seconds = backlog_ns / 1e9;
  if (!allowed) {
    // Fits once the backlog has drained to period - cost × interval.
    const double wait_ns = backlog_ns + cost * interval_ns_ - static_cast<double>(period_ns_);
    d.retry_after_seconds = std::max(0.0, wait_ns) / 1e9;
  }
  return d;
}

Gcra::Decision Gcra::take(double cost, int64_t now_ns) {
  int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t base = std::max(tat, now_ns);
    const int64_t next = base + static_cast<int64_t>(std::llround(cost * interval_ns_));
    if (next - now_ns > period_ns_) return describe(tat, now_ns, false, cost);
    if (tat_.compare_exchange_weak(tat, next, std::memory_order_relaxed)) return describe(next, now_ns, true, cost);
  }
}

void Gcra::adjust(double cost, int64_t now_ns) {
  int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t next = std::max(tat, now_ns) + static_cast<int64_t>(std::llround(cost * interval_ns_));
    if (tat_.compare_exchange_weak(tat, std::max(next, now_ns), std::memory_order_relaxed)) return;
  }
}

Gcra::Decision Gcra::peek(int64_t now_ns) const {
  return describe(tat_.load(std::memory_order_relaxed), now_ns, true, 0);
}

}  // namespace spillway::admission
