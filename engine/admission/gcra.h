// One rate limit as the Generic Cell Rate Algorithm: `amount` units per
// `period`, all of it usable at once (a bucket of that size refilled
// evenly). The whole state is one number, the theoretical arrival time
// (TAT), updated with compare-and-swap, so decisions are exact under
// concurrent use without a lock. Times come from the caller (nanoseconds on
// any monotonic clock), so tests inject theirs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "admission/redis_limiter.h"

namespace spillway::admission {

class Gcra {
 public:
  Gcra(double amount, int64_t period_ns);

  struct Decision {
    bool allowed = false;
    double limit = 0;          // the bucket's size (amount)
    double remaining = 0;      // units left after this decision
    double reset_seconds = 0;  // until the bucket is full again
    double retry_after_seconds = 0;  // when refused: until `cost` fits
  };
  // Takes `cost` units if they fit.
  Decision take(double cost, int64_t now_ns);
  // Adds (cost > 0) or gives back (cost < 0) units without a decision: usage
  // known after the fact. May push the bucket into debt; later takes wait
  // it out.
  void adjust(double cost, int64_t now_ns);
  // What take(0) would report, without changing anything.
  Decision peek(int64_t now_ns) const;
  // True when the bucket is full (nothing to remember).
  bool idle(int64_t now_ns) const { return tat_.load(std::memory_order_relaxed) <= now_ns; }
  double amount() const { return amount_; }
  int64_t periodNs() const { return period_ns_; }
  // A decision for a bucket whose backlog (TAT - now) is `backlog_ns`
  // (a decision made elsewhere: Redis).
  Decision describeBacklog(int64_t backlog_ns, bool allowed) const { return describe(backlog_ns, 0, allowed, 0); }

 private:
  Decision describe(int64_t tat, int64_t now_ns, bool allowed, double cost) const;
  const double amount_;
  const int64_t period_ns_;
  const double interval_ns_;  // period / amount
  std::atomic<int64_t> tat_{0};
};

// Token buckets a request was charged at admission, corrected by its real
// usage when it ends: local buckets, and the same buckets in Redis when the
// decision was made there.
struct TokenCharge {
  std::vector<std::shared_ptr<Gcra>> buckets;
  double tokens = 0;  // charged so far
  // Each token weighs this much in the local buckets: the number of
  // replicas when the local buckets stood in for Redis (each replica takes
  // its share of the limit), else 1.
  double scale = 1;
  std::shared_ptr<RedisLimiter> redis;
  std::vector<RedisLimiter::Bucket> redis_buckets;
};

}  // namespace spillway::admission
