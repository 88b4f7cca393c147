#include "admission/redis_limiter.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>

#include "common/mutex.h"
#include "common/strings.h"

namespace spillway::admission {

namespace {

// KEYS: the buckets. ARGV: per bucket interval_us (period / amount),
// period_us, cost. All or nothing: every bucket is checked before any is
// written. Returns {1, 0, backlog_us...} or {0, index (1-based), wait_us}.
constexpr const char* kTakeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local news = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local period = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + cost * interval
  if new - now > period then
    return {0, i, tostring(new - period - now)}
  end
  news[i] = new
end
local out = {1, 0}
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tostring(news[i]), 'PX', math.ceil((news[i] - now) / 1000) + 1000)
  out[#out + 1] = tostring(news[i] - now)
end
return out
)lua";

// KEYS: the buckets. ARGV: per bucket interval_us, cost (may be negative).
constexpr const char* kAdjustScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + tonumber(ARGV[2 * i]) * tonumber(ARGV[2 * i - 1])
  if new > now then
    redis.call('SET', KEYS[i], tostring(new), 'PX', math.ceil((new - now) / 1000) + 1000)
  else
    redis.call('DEL', KEYS[i])
  end
end
return 1
)lua";

struct Reply {
  redisReply* r = nullptr;
  ~Reply() {
    if (r) freeReplyObject(r);
  }
};

double number(const redisReply* e) {
  if (!e) return 0;
  if (e->type == REDIS_REPLY_INTEGER) return static_cast<double>(e->integer);
  if (e->type == REDIS_REPLY_STRING) return std::strtod(e->str, nullptr);
  return 0;
}

// EVAL with the script's text: Redis caches compiled scripts by their
// SHA-1, so the text costs bytes on loopback, not compilation.
redisReply* eval(redisContext* c, const char* script, const std::vector<std::string>& keys,
                 const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  const std::string nkeys = std::to_string(keys.size());
  auto push = [&](const std::string& s) {
    argv.push_back(s.data());
    lens.push_back(s.size());
  };
  const std::string cmd = "EVAL", body = script;
  push(cmd);
  push(body);
  push(nkeys);
  for (const auto& k : keys) push(k);
  for (const auto& a : args) push(a);
  return static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
}

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

}  // namespace

RedisLimiter::RedisLimiter(Settings settings)
    : settings_(std::move(settings)),
      link_(settings_.link, "rate limits",
            "enforcing this replica's share of each limit (the limit divided by the live replicas, fleet.replicas) until it answers again") {}

RedisLimiter::~RedisLimiter() {
  for (auto* c : idle_) redisFree(c);
}

redisContext* RedisLimiter::acquire() {
  {
    common::MutexLock lock(mu_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  return link_.connect();
}

void RedisLimiter::release(redisContext* c, bool ok) {
  if (!ok) {
    link_.failed(c->err ? c->errstr : "unexpected reply");
    redisFree(c);
    return;
  }
  link_.answered();
  common::MutexLock lock(mu_);
  if (idle_.size() < 64) {
    idle_.push_back(c);
  } else {
    redisFree(c);
  }
}

std::optional<RedisLimiter::Result> RedisLimiter::take(const std::vector<Bucket>& buckets) {
  redisContext* c = acquire();
  if (!c) return std::nullopt;
  std::vector<std::string> keys, args;
  for (const auto& b : buckets) {
    keys.push_back(settings_.key_prefix + b.key);
    args.push_back(num(static_cast<double>(b.period_us) / b.amount));
    args.push_back(std::to_string(b.period_us));
    args.push_back(num(b.cost));
  }
  Reply reply{eval(c, kTakeScript, keys, args)};
  const redisReply* r = reply.r;
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
    release(c, false);
    return std::nullopt;
  }
  Result out;
  out.allowed = number(r->element[0]) == 1;
  if (!out.allowed) {
    out.denied = static_cast<size_t>(number(r->element[1])) - 1;
    out.retry_after_seconds = r->elements > 2 ? std::max(0.0, number(r->element[2])) / 1e6 : 0;
  } else {
    for (size_t i = 2; i < r->elements; ++i) out.backlog_us.push_back(number(r->element[i]));
  }
  release(c, true);
  return out;
}

void RedisLimiter::adjust(const std::vector<Bucket>& buckets) {
  if (buckets.empty()) return;
  redisContext* c = acquire();
  if (!c) return;
  std::vector<std::string> keys, args;
  for (const auto& b : buckets) {
    keys.push_back(settings_.key_prefix + b.key);
    args.push_back(num(static_cast<double>(b.period_us) / b.amount));
    args.push_back(num(b.cost));
  }
  Reply reply{eval(c, kAdjustScript, keys, args)};
  release(c, reply.r && reply.r->type != REDIS_REPLY_ERROR);
}

}  // namespace spillway::admission
