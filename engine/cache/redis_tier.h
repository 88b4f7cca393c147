// L3: answers in a Redis shared by several spillwayd replicas, with their
// own TTL. One connection on the tier's own thread (hiredis, as for the
// shared rate limits: Debian's reference C client, synchronous with
// timeouts); the request path awaits a lookup without blocking its worker.
// A Redis that does not answer within timeout_ms is skipped, counted and
// warned about; the tier reconnects at most once a second (common/redis_link,
// shared with the rate limiter). Keys:
// PREFIX MODEL ":" TENANT ":" HEX, so a purge by model or tenant is a SCAN.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "cache/entry.h"
#include "cache/task_thread.h"
#include "common/asio_types.h"
#include "common/redis_link.h"

struct redisContext;

namespace spillway::cache {

class RedisTier {
 public:
  struct Settings {
    common::RedisLink::Settings link;
    std::string key_prefix = "spillway:cache:";
    int64_t ttl_ms = 3'600'000;
    int64_t grace_ms = 0;  // kept this long past the TTL, for stale answers
  };
  explicit RedisTier(Settings settings);
  ~RedisTier();

  // `model` and `tenant` must outlive the call (await it at once).
  common::Awaitable<Found> find(CacheKey key, const std::string& model, const std::string& tenant, int64_t now_ms);
  Found findNow(const CacheKey& key, const std::string& model, const std::string& tenant, int64_t now_ms);
  void put(EntryPtr entry);
  uint64_t purge(const std::string& model, const std::string& tenant);
  void flush() { thread_->call([] { return 0; }); }

  bool up() const { return link_.up(); }
  struct Stats {
    uint64_t lookups = 0, hits = 0, writes = 0, errors = 0, skipped = 0;
  };
  Stats stats() const;
  std::string address() const;

 private:
  redisContext* connection();  // the connection, (re)connecting at most once a second; null when down
  void failed(const std::string& why);
  Found lookupOnThread(const CacheKey& key, const std::string& model, const std::string& tenant, int64_t now_ms);
  std::string redisKey(const CacheKey& key, std::string_view model, std::string_view tenant) const;

  const Settings settings_;
  common::RedisLink link_;       // connecting, up/down, the retry second
  redisContext* ctx_ = nullptr;  // tier thread only
  std::atomic<uint64_t> lookups_{0}, hits_{0}, writes_{0}, errors_{0}, skipped_{0};
  std::unique_ptr<TaskThread> thread_;  // last: stops first
};

}  // namespace spillway::cache
