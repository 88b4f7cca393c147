#include "upstream/health_checker.h"

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>

#include "common/asio_types.h"
#include "upstream/http_get.h"

namespace spillway::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct HealthChecker::State {
  State(net::io_context& c, std::vector<BackendPtr> b, HealthChecker::TlsFor t)
      : ioc(c), backends(std::move(b)), tls_for(std::move(t)) {}
  net::io_context& ioc;
  std::vector<BackendPtr> backends;
  HealthChecker::TlsFor tls_for;
  std::atomic<bool> stopped{false};
  std::vector<std::unique_ptr<common::SteadyTimer>> timers;  // one per backend, used on ioc only
};

namespace {

common::Awaitable<bool> probe(BackendPtr b, net::ssl::context* tls) {
  const auto& hc = b->config().health_check();
  auto got = co_await httpGet(b, tls, hc.path(), std::chrono::milliseconds(hc.timeout_ms()), 1 << 20);
  co_return got.ok() && got->status >= 200 && got->status < 300;
}

common::Awaitable<void> loop(std::shared_ptr<HealthChecker::State> st, size_t i) {
  BackendPtr b = st->backends[i];
  const auto& hc = b->config().health_check();
  auto& timer = *st->timers[i];
  uint32_t fails = 0, passes = 0;
  while (!st->stopped.load()) {
    bool ok = co_await probe(b, st->tls_for(*b));
    if (st->stopped.load()) break;
    if (ok) {
      fails = 0;
      if (!b->healthy() && ++passes >= hc.healthy_threshold()) {
        b->setHealthy(true);
        spdlog::info("backend {} is up again (health check {} passed)", b->name(), hc.path());
      }
    } else {
      passes = 0;
      if (b->healthy() && ++fails >= hc.unhealthy_threshold()) {
        b->setHealthy(false);
        spdlog::warn("backend {} marked down: {} failed health checks on {}", b->name(), fails,
                     hc.path());
      }
    }
    timer.expires_after(std::chrono::milliseconds(hc.interval_ms()));
    boost::system::error_code ec;
    co_await timer.async_wait(net::redirect_error(common::kUseAwaitable, ec));
  }
}

}  // namespace

HealthChecker::HealthChecker(net::io_context& ioc, std::vector<BackendPtr> backends, TlsFor tls_for)
    : state_(std::make_shared<State>(ioc, std::move(backends), std::move(tls_for))) {
  for (size_t i = 0; i < state_->backends.size(); ++i) {
    state_->timers.push_back(std::make_unique<common::SteadyTimer>(ioc));
  }
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  for (size_t i = 0; i < state_->backends.size(); ++i) {
    if (state_->backends[i]->config().health_check().path() == "none") continue;
    net::co_spawn(state_->ioc, loop(state_, i), net::detached);
  }
}

void HealthChecker::stop() {
  if (state_->stopped.exchange(true)) return;
  net::post(state_->ioc, [st = state_] {
    for (auto& t : st->timers) t->cancel();
  });
}

}  // namespace spillway::upstream
