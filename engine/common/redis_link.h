// What the shared rate limiter and the cache's Redis tier have in common as
// Redis clients (hiredis): connecting with one timeout for the connect and
// every later command, and knowing whether Redis answers — after a failure
// no new connection is tried for a second, so a dead Redis costs the
// request path nothing, and each change between up and down is logged once.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/mutex.h"

struct redisContext;

namespace spillway::common {

class RedisLink {
 public:
  // Where Redis is and how long to wait for it: the one copy the rate
  // limiter's and the cache tier's settings embed.
  struct Settings {
    std::string host = "127.0.0.1";
    uint16_t port = 6379;
    std::chrono::milliseconds timeout{50};
  };
  // Settings for a validated "HOST:PORT" (IPv6 as "[::1]:6379").
  static Settings at(std::string_view address, std::chrono::milliseconds timeout);
  // `user` names the client in logs ("rate limits"); `while_down` says what
  // happens meanwhile ("enforcing local limits until it answers again").
  RedisLink(Settings settings, std::string user, std::string while_down);

  // A new connection (the caller frees it with redisFree), or null: Redis
  // is down and its second has not passed, or connecting failed (then
  // marked down).
  redisContext* connect();
  // A call failed (no answer, a broken connection): down, logged once.
  void failed(const std::string& why);
  // A call was answered: up again, logged once.
  void answered();

  bool up() const { return up_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  std::string address() const;

 private:
  const Settings settings_;
  const std::string user_, while_down_;
  common::Mutex mu_;
  std::chrono::steady_clock::time_point retry_at_ ABSL_GUARDED_BY(mu_);  // no new connection before, while down
  std::atomic<bool> up_{true};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace spillway::common
