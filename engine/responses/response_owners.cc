#include "responses/response_owners.h"

#include <hiredis/hiredis.h>

#include "common/clock.h"
#include "common/strings.h"

namespace spillway::responses {

ResponseOwners::ResponseOwners(metrics::Registry& registry, Clock clock_ms)
    : clock_(std::move(clock_ms)),
      routed_(registry.counter("spillway_response_affinity_total",
                               "Requests naming a stored Responses API response, by how they were routed: pinned "
                               "(to the backend that stores it), lost (that backend is gone or unavailable: "
                               "balanced as usual) or unknown (an id this gateway did not see created).",
                               {"result"})) {
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_response_ids", "Responses API ids whose backend the gateway remembers.", {}, [this] {
        return std::vector<std::pair<metrics::Labels, double>>{{{}, static_cast<double>(size())}};
      }));
}

namespace {

constexpr std::string_view kKeyPrefix = "spillway:resp:";

}  // namespace

ResponseOwners::~ResponseOwners() {
  for (auto* c : idle_) redisFree(c);
}

int64_t ResponseOwners::now() const { return clock_ ? clock_() : common::wallClockMs(); }

void ResponseOwners::configure(std::chrono::seconds ttl, size_t max_ids,
                               std::optional<common::RedisLink::Settings> redis) {
  std::vector<redisContext*> stale;
  {
    common::MutexLock lock(mu_);
    ttl_ms_ = ttl.count() * 1000;
    max_ids_ = std::max<size_t>(1, max_ids);
    const bool same = redis && link_ && link_->address() == common::strCat(redis->host, ":", redis->port);
    if (same) return;
    stale.swap(idle_);
    link_ = redis ? std::make_shared<common::RedisLink>(*redis, "response affinity",
                                                        "remembering response owners locally until it answers again")
                  : nullptr;
  }
  for (auto* c : stale) redisFree(c);
}

std::shared_ptr<common::RedisLink> ResponseOwners::link() const {
  common::MutexLock lock(mu_);
  return link_;
}

redisContext* ResponseOwners::acquire() {
  std::shared_ptr<common::RedisLink> l;
  {
    common::MutexLock lock(mu_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
    l = link_;
  }
  return l ? l->connect() : nullptr;
}

void ResponseOwners::release(redisContext* c, bool ok) {
  std::shared_ptr<common::RedisLink> l = link();
  if (!ok) {
    if (l) l->failed(c->err ? c->errstr : "unexpected reply");
    redisFree(c);
    return;
  }
  if (l) l->answered();
  common::MutexLock lock(mu_);
  if (l && idle_.size() < 16) {
    idle_.push_back(c);
  } else {
    redisFree(c);
  }
}

void ResponseOwners::share(std::string_view id, std::string_view backend, int64_t ttl_ms) {
  redisContext* c = acquire();
  if (!c) return;
  const std::string key = common::strCat(kKeyPrefix, id);
  const std::string px = std::to_string(std::max<int64_t>(1, ttl_ms));
  const char* argv[] = {"SET", key.data(), backend.data(), "PX", px.data()};
  const size_t lens[] = {3, key.size(), backend.size(), 2, px.size()};
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, 5, argv, lens));
  const bool ok = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  release(c, ok);
}

std::optional<std::string> ResponseOwners::shared(std::string_view id) {
  redisContext* c = acquire();
  if (!c) return std::nullopt;
  const std::string key = common::strCat(kKeyPrefix, id);
  const char* argv[] = {"GET", key.data()};
  const size_t lens[] = {3, key.size()};
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, 2, argv, lens));
  std::optional<std::string> out;
  const bool ok = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL);
  if (ok && r->type == REDIS_REPLY_STRING) out = std::string(r->str, r->len);
  if (r) freeReplyObject(r);
  release(c, ok);
  return out;
}

void ResponseOwners::unshare(std::string_view id) {
  redisContext* c = acquire();
  if (!c) return;
  const std::string key = common::strCat(kKeyPrefix, id);
  const char* argv[] = {"DEL", key.data()};
  const size_t lens[] = {3, key.size()};
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, 2, argv, lens));
  const bool ok = r && r->type == REDIS_REPLY_INTEGER;
  if (r) freeReplyObject(r);
  release(c, ok);
}

void ResponseOwners::remember(std::string_view id, std::string_view backend) {
  if (id.empty()) return;
  const int64_t t = now();
  int64_t ttl_ms = 0;
  {
    common::MutexLock lock(mu_);
    ttl_ms = ttl_ms_;
  }
  share(id, backend, ttl_ms);
  common::MutexLock lock(mu_);
  auto [it, fresh] = owners_.try_emplace(std::string(id));
  it->second = {std::string(backend), t + ttl_ms_};
  if (fresh) order_.push_back(it->first);
  // Forget the oldest past the bound, and expired ids at the front.
  while (!order_.empty()) {
    auto front = owners_.find(order_.front());
    const bool gone = front == owners_.end();
    if (!gone && owners_.size() <= max_ids_ && front->second.expires_ms > t) break;
    if (!gone) owners_.erase(front);
    order_.pop_front();
  }
}

std::optional<std::string> ResponseOwners::owner(std::string_view id) {
  const int64_t t = now();
  {
    common::MutexLock lock(mu_);
    auto it = owners_.find(std::string(id));
    if (it != owners_.end() && it->second.expires_ms > t) return it->second.backend;
  }
  return shared(id);  // another replica may have seen it created
}

void ResponseOwners::forget(std::string_view id) {
  {
    common::MutexLock lock(mu_);
    owners_.erase(std::string(id));  // its place in order_ is skipped when reached
  }
  unshare(id);
}

size_t ResponseOwners::size() const {
  common::MutexLock lock(mu_);
  return owners_.size();
}

void ResponseOwners::count(Routed r) {
  static constexpr const char* kNames[] = {"pinned", "lost", "unknown"};
  routed_.with({kNames[static_cast<int>(r)]}).inc();
}

}  // namespace spillway::responses
