// Rate-limit buckets in Redis, so several spillwayd replicas enforce one
// limit instead of N times it. Each decision is one Lua script run
// atomically by Redis: GCRA over every bucket the request touches, all or
// nothing, on Redis's own clock (TIME), so replicas need no clock agreement.
// Usage corrections (tokens known at the end) are a second script.
//
// Client: hiredis (Debian's libhiredis), the reference C client — small,
// synchronous with timeouts, no event loop of its own to integrate. Calls
// block the calling worker thread for one loopback round trip (p50 125 µs,
// p99 203 µs measured by `spillway-bench admission`); connections are
// pooled, one per concurrent caller.
//
// Failure: when Redis does not answer within the timeout (or refuses), the
// call returns nullopt and the caller decides locally; the limiter is then
// "down" (metric, warning, console banner) and retries a connection at most
// once a second, returning to Redis as soon as it answers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/redis_link.h"

struct redisContext;

namespace spillway::admission {

class RedisLimiter {
 public:
  struct Settings {
    common::RedisLink::Settings link;
    std::string key_prefix = "spillway:rl:";
  };
  explicit RedisLimiter(Settings settings);
  ~RedisLimiter();
  RedisLimiter(const RedisLimiter&) = delete;
  RedisLimiter& operator=(const RedisLimiter&) = delete;

  struct Bucket {
    std::string key;       // without the prefix
    double amount = 0;     // units per period (the bucket's size)
    int64_t period_us = 0;
    double cost = 0;
  };
  struct Result {
    bool allowed = false;
    size_t denied = 0;                  // index of the refusing bucket
    double retry_after_seconds = 0;     // when refused
    std::vector<double> backlog_us;     // per bucket when allowed: TAT - now after the take
  };
  // One all-or-nothing decision; nullopt when Redis could not be asked.
  std::optional<Result> take(const std::vector<Bucket>& buckets);
  // Adds (or gives back) `cost` of each bucket, best effort.
  void adjust(const std::vector<Bucket>& buckets);

  bool up() const { return link_.up(); }
  uint64_t failures() const { return link_.failures(); }
  const Settings& settings() const { return settings_; }

 private:
  redisContext* acquire();            // a pooled or new connection; null when Redis is down
  void release(redisContext* c, bool ok);

  const Settings settings_;
  common::RedisLink link_;                         // connecting, up/down, the retry second
  common::Mutex mu_;
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::admission
