#include "fleet/registry.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <unistd.h>

#include "common/clock.h"
#include "common/strings.h"

namespace spillway::fleet {

namespace {

// KEYS: the members' sorted set, this replica's hash, the config hash.
// ARGV: id, ttl ms, key prefix, then this replica's fields (name, value...).
// Registers, forgets members past the TTL, and answers
// {newest fleet version or nil, Redis's now in ms, each member's fields}.
constexpr std::string_view kBeat = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'seen_ms', now, unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local out = {redis.call('HGET', KEYS[3], 'seq') or false, now}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[3] .. 'replica:' .. id)
  if #fields > 0 then
    table.insert(fields, 'id')
    table.insert(fields, id)
    out[#out + 1] = fields
  end
end
return out
)lua";

// KEYS: the config hash, the version counter. ARGV: the lowest version the
// new one may take (what the publisher already knows of), config, actor,
// comment, origin. Answers the new fleet version.
constexpr std::string_view kPublish = R"lua(
local floor = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur < floor then redis.call('SET', KEYS[2], floor) end
local seq = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'seq', seq, 'config', ARGV[2], 'actor', ARGV[3], 'comment', ARGV[4],
           'origin', ARGV[5], 'ts_ms', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return seq
)lua";

// KEYS: the config hash, the version counter. ARGV: version, config, actor,
// comment, origin, ts. Puts a held version back when Redis has none (it
// restarted empty); 1 when it did.
constexpr std::string_view kRefill = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') < seq then redis.call('SET', KEYS[2], seq) end
redis.call('HSET', KEYS[1], 'seq', seq, 'config', ARGV[2], 'actor', ARGV[3], 'comment', ARGV[4],
           'origin', ARGV[5], 'ts_ms', ARGV[6])
return 1
)lua";

redisReply* command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
}

std::string text(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string(r->str, r->len) : "";
}

int64_t number(const std::string& s) {
  return s.empty() ? 0 : std::strtoll(s.c_str(), nullptr, 10);
}

std::map<std::string, std::string> fields(const redisReply* r) {
  std::map<std::string, std::string> out;
  if (!r || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i + 1 < r->elements; i += 2) out[text(r->element[i])] = text(r->element[i + 1]);
  return out;
}

}  // namespace

bool enabled(const v1::Config& config) {
  const std::string& a = config.fleet().redis_address();
  return !a.empty() && a != "none";
}

void keepLocalSections(const v1::Config& local, v1::Config& shared) {
  // Backends' literal API keys never travel (sharedSections blanks them):
  // each replica keeps its own for the backends it knows by name.
  for (auto& b : *shared.mutable_backends()) {
    for (const auto& lb : local.backends()) {
      if (lb.name() == b.name() && b.api_key().empty()) b.set_api_key(lb.api_key());
    }
  }
  *shared.mutable_server() = local.server();
  *shared.mutable_control() = local.control();
  *shared.mutable_gpu() = local.gpu();
  *shared.mutable_access_log() = local.access_log();
  *shared.mutable_fleet() = local.fleet();
}

v1::Config sharedSections(const v1::Config& config) {
  v1::Config out = config;
  out.clear_server();
  out.clear_control();
  out.clear_gpu();
  out.clear_access_log();
  out.clear_fleet();
  for (auto& b : *out.mutable_backends()) b.clear_api_key();  // secrets stay on the replica (api_key_env travels)
  return out;
}

Registry::Settings Registry::fromConfig(const v1::Config& config, const std::string& default_id) {
  const v1::Fleet& f = config.fleet();
  Settings s;
  s.link = common::RedisLink::at(f.redis_address(), std::chrono::milliseconds(f.timeout_ms()));
  s.prefix = f.key_prefix();
  s.replica_id = f.replica_id().empty() ? default_id : f.replica_id();
  s.heartbeat = std::chrono::milliseconds(f.heartbeat_ms());
  s.ttl = std::chrono::milliseconds(f.replica_ttl_ms());
  s.configured_replicas = f.replicas();
  s.follow_config = f.config_source() != "file";
  return s;
}

Registry::Registry(Settings settings, std::shared_ptr<upstream::FleetShare> share, metrics::Registry& metrics)
    : settings_(std::move(settings)),
      share_(std::move(share)),
      link_(settings_.link, "fleet registry",
            "the replica count stays at what was last read; fleet configs are neither published nor followed"),
      changes_(metrics.counter("spillway_fleet_config_changes_total",
                               "Fleet config versions this replica published, followed, or failed to, and held "
                               "versions it put back into a Redis that came back empty.",
                               {"outcome"})) {
  status_.replica_id = settings_.replica_id;
  status_.redis_address = link_.address();
  status_.follow_config = settings_.follow_config;
  status_.replicas = std::max<uint32_t>(1, settings_.configured_replicas);
  share_->setReplicas(status_.replicas);
  replicas_gauge_ = metrics.scopedCallbackGauge(
      "spillway_fleet_replicas",
      "Gateway replicas sharing the backends and the limits: live in the registry, or (while it cannot be read) "
      "the count last read or fleet.replicas.",
      {"source"}, [this] {
        Status s = status();
        return std::vector<std::pair<metrics::Labels, double>>{
            {{s.counted ? "registry" : "fallback"}, static_cast<double>(s.replicas)}};
      });
  up_gauge_ = metrics.scopedCallbackGauge("spillway_fleet_redis_up",
                                          "1 while the fleet registry's Redis answers, 0 while it does not.", {},
                                          [this] {
                                            return std::vector<std::pair<metrics::Labels, double>>{
                                                {{}, status().redis_up ? 1.0 : 0.0}};
                                          });
  version_gauge_ = metrics.scopedCallbackGauge(
      "spillway_fleet_config_version",
      "The fleet config version this replica runs (0: its own file's), and the newest published in Redis.",
      {"which"}, [this] {
        Status s = status();
        return std::vector<std::pair<metrics::Labels, double>>{
            {{"running"}, static_cast<double>(s.fleet_version)},
            {{"published"}, static_cast<double>(s.published_version)}};
      });
}

Registry::~Registry() {
  stop();
  if (conn_) redisFree(conn_);
}

redisContext* Registry::connection() {
  if (!conn_) conn_ = link_.connect();
  return conn_;
}

void Registry::dropConnection(const std::string& why) {
  if (conn_) redisFree(conn_);
  conn_ = nullptr;
  link_.failed(why);
}

std::optional<Published> Registry::readConfig(redisContext* c, const std::string& prefix) {
  redisReply* r = command(c, {"HGETALL", prefix + "config"});
  if (!r) return std::nullopt;
  auto f = fields(r);
  freeReplyObject(r);
  if (f.empty()) return std::nullopt;
  Published p;
  p.version = number(f["seq"]);
  if (p.version <= 0 || !p.config.ParseFromString(f["config"])) {
    spdlog::warn("fleet: the config in Redis ({}config) is unreadable; ignored", prefix);
    return std::nullopt;
  }
  p.actor = f["actor"];
  p.comment = f["comment"];
  p.origin = f["origin"];
  p.ts_ms = number(f["ts_ms"]);
  return p;
}

std::optional<Published> Registry::fetch(const Settings& settings) {
  common::RedisLink link(settings.link, "fleet registry", "starting on this replica's own config");
  redisContext* c = link.connect();
  if (!c) return std::nullopt;
  auto p = readConfig(c, settings.prefix);
  if (c->err) link.failed(c->errstr);
  redisFree(c);
  return p;
}

void Registry::start(Hooks hooks) {
  hooks_ = std::move(hooks);
  thread_ = std::thread([this] { run(); });
}

void Registry::stop() {
  {
    common::MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Registry::leave() {
  stop();
  {
    common::MutexLock lock(mu_);
    if (left_) return;
    left_ = true;
  }
  redisContext* c = connection();
  if (!c) return;
  for (const auto& args : {std::vector<std::string>{"ZREM", settings_.prefix + "replicas", settings_.replica_id},
                           std::vector<std::string>{"DEL", settings_.prefix + "replica:" + settings_.replica_id}}) {
    if (redisReply* r = command(c, args)) freeReplyObject(r);
  }
}

void Registry::run() {
  for (;;) {
    beat();
    common::MutexLock lock(mu_);
    if (cv_.wait_for(lock, settings_.heartbeat, [&] {
          mu_.assertHeld();
          return stopping_;
        })) {
      return;
    }
  }
}

void Registry::beat() {
  Replica self = hooks_.describe ? hooks_.describe() : Replica{};
  {
    common::MutexLock lock(mu_);
    self.fleet_version = status_.fleet_version;
  }
  redisContext* c = connection();
  if (!c) {
    common::MutexLock lock(mu_);
    status_.redis_up = false;
    return;
  }
  const std::vector<std::string> args = {
      "EVAL", std::string(kBeat), "3", settings_.prefix + "replicas",
      settings_.prefix + "replica:" + settings_.replica_id, settings_.prefix + "config",
      settings_.replica_id, std::to_string(settings_.ttl.count()), settings_.prefix,
      "url", self.url, "control", self.control, "host", self.host,
      "config_version", std::to_string(self.config_version), "fleet_version", std::to_string(self.fleet_version),
      "started_ms", std::to_string(self.started_ms), "limits_redis_up", self.limits_redis_up ? "1" : "0"};
  redisReply* r = command(c, args);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
    const std::string why = r && r->type == REDIS_REPLY_ERROR ? text(r) : (c->err ? c->errstr : "no answer");
    if (r) freeReplyObject(r);
    dropConnection(why);
    common::MutexLock lock(mu_);
    status_.redis_up = false;
    status_.counted = false;  // the count stays, no longer confirmed
    return;
  }
  link_.answered();
  const int64_t published = r->element[0]->type == REDIS_REPLY_NIL ? -1 : number(text(r->element[0]));
  std::vector<Replica> members;
  for (size_t i = 2; i < r->elements; ++i) {
    auto f = fields(r->element[i]);
    Replica m;
    m.id = f["id"];
    m.url = f["url"];
    m.control = f["control"];
    m.host = f["host"];
    m.config_version = number(f["config_version"]);
    m.fleet_version = number(f["fleet_version"]);
    m.started_ms = number(f["started_ms"]);
    m.seen_ms = number(f["seen_ms"]);
    m.limits_redis_up = f["limits_redis_up"] != "0";
    members.push_back(std::move(m));
  }
  freeReplyObject(r);
  std::stable_partition(members.begin(), members.end(), [&](const Replica& m) { return m.id == settings_.replica_id; });
  const uint32_t count = std::max<size_t>(1, members.size());
  share_->setReplicas(count);

  std::optional<Published> held;
  {
    common::MutexLock lock(mu_);
    if (status_.replicas != count) spdlog::info("fleet: {} replicas live (was {})", count, status_.replicas);
    status_.redis_up = true;
    status_.counted = true;
    status_.replicas = count;
    status_.members = std::move(members);
    status_.published_version = published;
    held = held_;
  }
  if (!settings_.follow_config) return;
  const int64_t running = held ? held->version : 0;
  if (published < 0 && held) {
    refill(c, *held);
    return;
  }
  if (published <= running) return;
  auto p = readConfig(c, settings_.prefix);
  if (!p || p->version <= running) return;
  absl::Status st = hooks_.follow ? hooks_.follow(*p) : absl::OkStatus();
  if (st.ok()) {
    changes_.with({"followed"}).inc();
    spdlog::info("fleet: now on fleet config v{} (applied by {} on {})", p->version, p->actor, p->origin);
  } else {
    changes_.with({"follow_failed"}).inc();
    spdlog::error("fleet: fleet config v{} (applied by {} on {}) cannot run here: {}", p->version, p->actor,
                  p->origin, std::string(st.message()));
  }
  // Either way it is the version this replica has seen: a config that
  // cannot run here is not retried every heartbeat.
  adopt(*p);
  common::MutexLock lock(mu_);
  if (st.ok()) ++status_.followed;
  else ++status_.follow_failures;
}

void Registry::refill(redisContext* c, const Published& held) {
  redisReply* r = command(c, {"EVAL", std::string(kRefill), "2", settings_.prefix + "config",
                              settings_.prefix + "config_seq", std::to_string(held.version),
                              held.config.SerializeAsString(), held.actor, held.comment, held.origin,
                              std::to_string(held.ts_ms)});
  const bool put = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (r) freeReplyObject(r);
  if (!put) return;
  changes_.with({"refilled"}).inc();
  spdlog::warn("fleet: Redis had no fleet config (restarted empty?); put back v{} from this replica", held.version);
  common::MutexLock lock(mu_);
  ++status_.refills;
  status_.published_version = held.version;
}

absl::StatusOr<int64_t> Registry::publish(const v1::Config& config, const std::string& actor,
                                          const std::string& comment) {
  Published p;
  p.config = sharedSections(config);
  p.actor = actor;
  p.comment = comment;
  p.origin = settings_.replica_id;
  int64_t floor = 0;
  {
    common::MutexLock lock(mu_);
    floor = std::max<int64_t>(status_.published_version, held_ ? held_->version : 0);
  }
  redisContext* c = link_.connect();
  redisReply* r = c ? command(c, {"EVAL", std::string(kPublish), "2", settings_.prefix + "config",
                                  settings_.prefix + "config_seq", std::to_string(floor),
                                  p.config.SerializeAsString(), actor, comment, p.origin})
                    : nullptr;
  const bool ok = r && r->type == REDIS_REPLY_INTEGER;
  if (ok) p.version = r->integer;
  const std::string why = r && r->type == REDIS_REPLY_ERROR ? text(r) : (c && c->err ? c->errstr : "Redis is down");
  if (r) freeReplyObject(r);
  if (c) {
    if (ok) link_.answered();
    else link_.failed(why);
    redisFree(c);
  }
  if (!ok) {
    changes_.with({"publish_failed"}).inc();
    common::MutexLock lock(mu_);
    ++status_.publish_failures;
    return absl::UnavailableError(common::strCat("not published to the fleet (", why, ")"));
  }
  p.ts_ms = common::wallClockMs();
  changes_.with({"published"}).inc();
  adopt(p);
  common::MutexLock lock(mu_);
  ++status_.published;
  status_.published_version = std::max(status_.published_version, p.version);
  return p.version;
}

void Registry::adopt(const Published& p) {
  common::MutexLock lock(mu_);
  if (held_ && held_->version >= p.version) return;
  held_ = p;
  status_.fleet_version = p.version;
}

Registry::Status Registry::status() const {
  common::MutexLock lock(mu_);
  Status s = status_;
  // This replica's own entry as of now, not as of its last heartbeat.
  if (!s.members.empty() && s.members[0].id == s.replica_id) s.members[0].fleet_version = s.fleet_version;
  return s;
}

}  // namespace spillway::fleet
