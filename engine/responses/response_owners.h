// Which backend stores each Responses API response. A response created with
// `store` (the default) lives on the inference server that produced it:
// requests naming it as previous_response_id, and GET/DELETE
// /v1/responses/{id}, must go back there. The gateway remembers the owner
// of every id it saw created, for api.response_affinity_ttl_seconds, up to
// api.max_remembered_responses ids (the oldest forgotten first).
//
// One per engine, shared by every routing table (ids outlive config
// applies); thread-safe. With a Redis address (api.redis_address, by
// default the cache's or the limits' Redis) every owner is also written
// there with its TTL, and an id this replica did not see is looked up
// there: replicas behind one load balancer share the map. Redis calls are
// synchronous and bounded by its timeout; while Redis does not answer the
// map is local (common/redis_link: logged once, retried once a second).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/mutex.h"
#include "common/redis_link.h"
#include "metrics/registry.h"

struct redisContext;

namespace spillway::responses {

class ResponseOwners {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds; injected by tests

  explicit ResponseOwners(metrics::Registry& registry, Clock clock_ms = {});
  ~ResponseOwners();

  // `redis`: where the fleet shares the map (nullopt: local only); a change
  // of address opens a new link.
  void configure(std::chrono::seconds ttl, size_t max_ids, std::optional<common::RedisLink::Settings> redis = {});
  void remember(std::string_view id, std::string_view backend);
  // The backend that stores `id`, if remembered and not expired.
  std::optional<std::string> owner(std::string_view id);
  void forget(std::string_view id);
  size_t size() const;

  // How a request that names a stored response was routed (metrics).
  enum class Routed { kPinned, kLost, kUnknown };
  void count(Routed r);

 private:
  int64_t now() const;
  // The shared map (all no-ops without Redis or while it is down).
  void share(std::string_view id, std::string_view backend, int64_t ttl_ms);
  std::optional<std::string> shared(std::string_view id);
  void unshare(std::string_view id);
  redisContext* acquire();
  void release(redisContext* c, bool ok);
  std::shared_ptr<common::RedisLink> link() const;

  struct Owner {
    std::string backend;
    int64_t expires_ms = 0;
  };
  const Clock clock_;
  mutable common::Mutex mu_;
  std::unordered_map<std::string, Owner> owners_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // ids by first sight, oldest first
  int64_t ttl_ms_ ABSL_GUARDED_BY(mu_) = 86'400'000;
  size_t max_ids_ ABSL_GUARDED_BY(mu_) = 100'000;
  std::shared_ptr<common::RedisLink> link_ ABSL_GUARDED_BY(mu_);
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);  // connections to link_
  metrics::Family<metrics::Counter>& routed_;
  std::vector<metrics::Registry::Registration> gauges_;
};

}  // namespace spillway::responses
