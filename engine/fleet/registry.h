// Several spillwayd replicas as one gateway: what they share through Redis
// besides the limits and the cache (docs/fleet.md).
//
//   - Membership: each replica renews `PREFIX replica:ID` (a hash: its
//     front URL, control address, config versions, when it started) with a
//     TTL, and its score in the sorted set `PREFIX replicas`, every
//     heartbeat; members not renewed within the TTL drop out. The count of
//     live members goes into the engine's FleetShare: backends divide a
//     configured concurrency by it, the rate limiter takes its share of a
//     limit while Redis cannot decide. While Redis does not answer the
//     count stays at what was last read (or fleet.replicas when none was).
//   - Config: an apply on any replica is published as the hash `PREFIX
//     config` (the config without the sections that belong to one replica,
//     and a fleet version from the counter `PREFIX config_seq`); every
//     replica that sees a fleet version newer than the one it runs follows
//     it. A Redis that comes back empty is refilled from the newest version
//     a replica holds, and the counter never goes back below it.
//
// Each step is one Lua script, atomic in Redis and timed by Redis's clock
// (TIME), so replicas need no clock agreement. Client: hiredis through
// common::RedisLink (one connection on the heartbeat thread; publishing
// opens its own). The registry knows nothing of the engine: it calls back.
//
// Threading: one heartbeat thread; every public method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "common/redis_link.h"
#include "metrics/registry.h"
#include "spillway/v1/config.pb.h"
#include "upstream/fleet_share.h"

struct redisContext;

namespace spillway::fleet {

// A replica as it registered itself.
struct Replica {
  std::string id;
  std::string url;      // its front listener
  std::string control;  // its control plane ("" when off)
  std::string host;
  int64_t config_version = 0;  // the version in its own store
  int64_t fleet_version = 0;   // the fleet config it runs (0: its own file)
  int64_t started_ms = 0;
  int64_t seen_ms = 0;         // its last heartbeat (Redis's clock)
  bool limits_redis_up = true;  // its rate limiter reaches Redis
};

// A config published for the fleet.
struct Published {
  int64_t version = 0;  // the fleet version (Redis's counter)
  v1::Config config;    // the shared sections only
  std::string actor, comment, origin;  // who applied it, on which replica
  int64_t ts_ms = 0;
};

// A fleet is configured: a Redis for the registry (defaults applied), not "none".
bool enabled(const v1::Config& config);

// The sections that belong to one replica and are never shared: where it
// listens, its control plane and credentials, its GPUs, its access log, its
// fleet settings — and backends' literal `api_key`s (published blank; each
// replica keeps its own by backend name; `api_key_env` names travel).
void keepLocalSections(const v1::Config& local, v1::Config& shared);
// `config` without those sections and secrets (what is published).
v1::Config sharedSections(const v1::Config& config);

class Registry {
 public:
  struct Settings {
    common::RedisLink::Settings link;
    std::string prefix = "spillway:fleet:";
    std::string replica_id;
    std::chrono::milliseconds heartbeat{1000};
    std::chrono::milliseconds ttl{3000};
    uint32_t configured_replicas = 0;  // fleet.replicas
    bool follow_config = true;         // config_source "redis"
  };
  // Settings from an effective config (defaults applied; fleet on).
  static Settings fromConfig(const v1::Config& config, const std::string& default_id);

  struct Hooks {
    // This replica as it registers itself now (the registry fills in id,
    // seen_ms and the fleet version it holds).
    std::function<Replica()> describe;
    // A newer fleet config: apply it (keeping this replica's own sections).
    // OK or why it could not run here; the registry moves on either way.
    std::function<absl::Status(const Published&)> follow;
  };

  Registry(Settings settings, std::shared_ptr<upstream::FleetShare> share, metrics::Registry& metrics);
  ~Registry();  // stop()
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The newest fleet config in the Redis of `settings` (nullopt: none, or
  // Redis down): what a replica starts on, before its registry exists.
  // Blocking, one round trip.
  static std::optional<Published> fetch(const Settings& settings);
  // Registers now and then every heartbeat, on a thread of its own.
  void start(Hooks hooks);
  void stop();
  // Stops and takes this replica out of the registry now (a drain or a
  // stop), so its share goes back to the others at their next heartbeat.
  // Idempotent.
  void leave();

  // A config this replica applied on its own (control plane, file reload,
  // rollback): published as the next fleet version, which this replica
  // then runs. The fleet version, or Unavailable when Redis did not take
  // it (the apply stands here; the others do not see it).
  absl::StatusOr<int64_t> publish(const v1::Config& config, const std::string& actor, const std::string& comment);
  // This replica runs fleet version `version` now (`config` its shared
  // sections: held to refill a Redis that comes back empty).
  void adopt(const Published& p);

  struct Status {
    std::string replica_id, redis_address;
    bool redis_up = false;
    bool follow_config = true;
    uint32_t replicas = 1;           // what limits and backends are divided by
    bool counted = false;            // the count came from the registry (else configured or last known)
    int64_t fleet_version = 0;       // the fleet config this replica runs (0: none)
    int64_t published_version = 0;  // the newest in Redis at the last heartbeat (-1: none there)
    std::vector<Replica> members;    // at the last heartbeat, this replica first
    uint64_t followed = 0, follow_failures = 0, published = 0, publish_failures = 0, refills = 0;
  };
  Status status() const;
  const Settings& settings() const { return settings_; }

 private:
  void run();
  void beat() ABSL_LOCKS_EXCLUDED(mu_);
  redisContext* connection();  // the heartbeat thread's, (re)connected when needed
  void dropConnection(const std::string& why);
  static std::optional<Published> readConfig(redisContext* c, const std::string& prefix);
  void refill(redisContext* c, const Published& held);

  const Settings settings_;
  const std::shared_ptr<upstream::FleetShare> share_;
  common::RedisLink link_;
  Hooks hooks_;
  redisContext* conn_ = nullptr;  // the heartbeat thread's only

  mutable common::Mutex mu_;
  Status status_ ABSL_GUARDED_BY(mu_);
  std::optional<Published> held_ ABSL_GUARDED_BY(mu_);  // the fleet config this replica runs
  common::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool left_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  metrics::Registry::Registration replicas_gauge_, up_gauge_, version_gauge_;
  metrics::Family<metrics::Counter>& changes_;
};

}  // namespace spillway::fleet
