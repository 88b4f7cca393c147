#include "upstream/load_scraper.h"

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstdlib>
#include <string>

#include "common/asio_types.h"
#include "common/clock.h"
#include "upstream/http_get.h"

namespace spillway::upstream {

namespace net = boost::asio;

std::optional<LoadReading> parseLoadMetrics(std::string_view text) {
  LoadReading r;
  bool running = false, waiting = false, cache = false;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, name_end);
    // name{labels} value [timestamp]
    size_t after = name_end;
    if (line[after] == '{') {
      after = line.find('}', after);
      if (after == std::string_view::npos) continue;
      ++after;
    }
    std::string_view rest = line.substr(after);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const std::string_view value = rest.substr(0, rest.find(' '));
    const std::string v(value);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (end == v.c_str()) continue;
    if (name == "vllm:num_requests_running" || name == "sglang:num_running_reqs") {
      r.running += x;
      running = true;
    } else if (name == "vllm:num_requests_waiting" || name == "sglang:num_queue_reqs") {
      r.waiting += x;
      waiting = true;
    } else if (name == "vllm:gpu_cache_usage_perc" || name == "sglang:token_usage") {
      r.cache_usage = cache ? std::max(r.cache_usage, x) : x;
      cache = true;
    }
  }
  if (!running && !waiting) return std::nullopt;
  return r;
}

struct LoadScraper::State {
  State(net::io_context& c, std::vector<BackendPtr> b, v1::LoadMetrics s, HealthChecker::TlsFor t)
      : ioc(c), backends(std::move(b)), settings(std::move(s)), tls_for(std::move(t)) {}
  net::io_context& ioc;
  std::vector<BackendPtr> backends;
  const v1::LoadMetrics settings;
  HealthChecker::TlsFor tls_for;
  std::atomic<bool> stopped{false};
  std::vector<std::unique_ptr<common::SteadyTimer>> timers;  // one per backend, used on ioc only
};

namespace {

common::Awaitable<void> loop(std::shared_ptr<LoadScraper::State> st, size_t i) {
  BackendPtr b = st->backends[i];
  auto& timer = *st->timers[i];
  const auto interval = std::chrono::milliseconds(st->settings.interval_ms());
  while (!st->stopped.load()) {
    auto got = co_await httpGet(b, st->tls_for(*b), st->settings.path(), interval, 4 << 20);
    if (st->stopped.load()) break;
    if (got.ok() && got->status == 200) {
      if (auto r = parseLoadMetrics(got->body)) {
        b->setReportedLoad(r->running, r->waiting, r->cache_usage, common::wallClockMs() + st->settings.max_age_ms());
      }
    }
    timer.expires_after(interval);
    boost::system::error_code ec;
    co_await timer.async_wait(net::redirect_error(common::kUseAwaitable, ec));
  }
}

}  // namespace

LoadScraper::LoadScraper(net::io_context& ioc, std::vector<BackendPtr> backends, v1::LoadMetrics settings,
                         HealthChecker::TlsFor tls_for)
    : state_(std::make_shared<State>(ioc, std::move(backends), std::move(settings), std::move(tls_for))) {
  for (size_t i = 0; i < state_->backends.size(); ++i) state_->timers.push_back(std::make_unique<common::SteadyTimer>(ioc));
}

LoadScraper::~LoadScraper() { stop(); }

void LoadScraper::start() {
  if (state_->settings.path().empty() || state_->settings.path() == "none") return;
  for (size_t i = 0; i < state_->backends.size(); ++i) net::co_spawn(state_->ioc, loop(state_, i), net::detached);
}

void LoadScraper::stop() {
  if (state_->stopped.exchange(true)) return;
  net::post(state_->ioc, [st = state_] {
    for (auto& t : st->timers) t->cancel();
  });
}

}  // namespace spillway::upstream
