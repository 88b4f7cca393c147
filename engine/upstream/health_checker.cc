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
#include "upstream/connection_pool.h"

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

template <typename Stream>
common::Awaitable<bool> probeOver(Stream& stream, beast::flat_buffer& buffer, const Backend& b,
                               const std::string& target) {
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, b.url().hostHeader());
  req.set(http::field::user_agent, "spillway-health-check");
  if (!b.apiKey().empty()) req.set(http::field::authorization, "Bearer " + b.apiKey());
  req.keep_alive(false);
  boost::system::error_code ec;
  co_await http::async_write(stream, req, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) co_return false;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  co_await http::async_read(stream, buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) co_return false;
  co_return http::to_status_class(parser.get().result()) == http::status_class::successful;
}

common::Awaitable<bool> probe(BackendPtr b, net::ssl::context* tls) {
  const auto& hc = b->config().health_check();
  const auto timeout = std::chrono::milliseconds(hc.timeout_ms());
  auto conn = co_await openConnection(b, tls, timeout);
  if (!conn.ok()) co_return false;
  auto& c = **conn;
  c.lowest().expires_after(timeout);
  const std::string target = b->url().path_prefix + hc.path();
  bool ok = co_await std::visit(
      [&](auto& s) { return probeOver(s, c.buffer, *b, target); }, c.stream);
  co_return ok;
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
