#include "common/redis_link.h"

#include "common/mutex.h"
#include "common/url.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "common/strings.h"

namespace spillway::common {

RedisLink::Settings RedisLink::at(std::string_view address, std::chrono::milliseconds timeout) {
  Settings s;
  if (auto hp = parseHostPort(address); hp.ok()) {  // validated with the config
    s.host = hp->host;
    s.port = hp->port;
  }
  s.timeout = timeout;
  return s;
}

RedisLink::RedisLink(Settings settings, std::string user, std::string while_down)
    : settings_(std::move(settings)), user_(std::move(user)), while_down_(std::move(while_down)) {}

std::string RedisLink::address() const { return strCat(settings_.host, ":", settings_.port); }

redisContext* RedisLink::connect() {
  {
    common::MutexLock lock(mu_);
    if (!up() && std::chrono::steady_clock::now() < retry_at_) return nullptr;  // down: do not wait on it again yet
  }
  timeval tv{static_cast<time_t>(settings_.timeout.count() / 1000),
             static_cast<suseconds_t>((settings_.timeout.count() % 1000) * 1000)};
  redisContext* c = redisConnectWithTimeout(settings_.host.c_str(), settings_.port, tv);
  if (!c || c->err) {
    failed(c ? c->errstr : "cannot allocate a connection");
    if (c) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, tv);
  return c;
}

void RedisLink::failed(const std::string& why) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  {
    common::MutexLock lock(mu_);
    retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  }
  if (up_.exchange(false)) spdlog::warn("{}: Redis at {} unavailable ({}); {}", user_, address(), why, while_down_);
}

void RedisLink::answered() {
  if (!up_.exchange(true)) spdlog::warn("{}: Redis at {} answers again", user_, address());
}

}  // namespace spillway::common
