#include "http/gateway.h"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <charconv>
#include <chrono>
#include <limits>
#include <optional>
#include <unordered_map>

#include "common/asio_types.h"
#include "common/clock.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "http/responses.h"
#include "openai/openai.h"
#include "upstream/connection_pool.h"

namespace spillway::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using Clock = std::chrono::steady_clock;

struct Gateway::Metrics {
  explicit Metrics(metrics::Registry& r)
      : requests(r.counter("spillway_requests_total",
                           "Requests answered, by route, model, backend and HTTP status code.",
                           {"route", "model", "backend", "code"})),
        in_flight(r.gauge("spillway_requests_in_flight", "Requests being served now.", {}).with({})),
        duration(r.histogram("spillway_request_duration_seconds",
                             "End-to-end request latency as the client sees it.", {"route", "model"},
                             metrics::latencyBucketsSeconds())),
        ttft(r.histogram("spillway_time_to_first_token_seconds",
                         "Time from request arrival to the first body byte from the backend.",
                         {"model", "backend"}, metrics::latencyBucketsSeconds())),
        connects(r.counter("spillway_upstream_connects_total",
                           "Upstream connection attempts, by backend and result.", {"backend", "result"})),
        retries(r.counter("spillway_upstream_retries_total",
                          "Requests re-sent before any response byte, by backend and reason.",
                          {"backend", "reason"})) {}

  metrics::Family<metrics::Counter>& requests;
  metrics::Gauge& in_flight;
  metrics::Family<metrics::Histogram>& duration;
  metrics::Family<metrics::Histogram>& ttft;
  metrics::Family<metrics::Counter>& connects;
  metrics::Family<metrics::Counter>& retries;
};

namespace {

// Identifies a label set by ids instead of strings, so the per-request
// metric lookup allocates nothing. Pool and backend ids are unique for the
// engine's lifetime (never reused after a config reload).
struct MetricKey {
  uint8_t route = 0;
  uint64_t pool = 0;     // PoolRoute::id, 0 for none
  uint64_t backend = 0;  // Backend::id(), 0 for none
  int code = 0;
  bool operator==(const MetricKey&) const = default;
};

struct MetricKeyHash {
  size_t operator()(const MetricKey& k) const {
    uint64_t h = k.pool * 0x9e3779b97f4a7c15ull ^ (k.backend + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
    return static_cast<size_t>(h ^ (static_cast<uint64_t>(k.code) << 8) ^ k.route);
  }
};

}  // namespace

// Per-worker state: only its own thread touches it.
struct Gateway::Worker {
  // By backend id. Shared so a request keeps its pool even if a config
  // reload prunes it meanwhile; the pool then closes with the request.
  std::unordered_map<uint64_t, std::shared_ptr<upstream::ConnectionPool>> pools;
  std::weak_ptr<const RouteTable> pools_for;  // the table `pools` was last pruned against
  openai::RequestParser parser;
  // Metric children looked up once per label set; afterwards updates are
  // lock-free atomics.
  std::unordered_map<MetricKey, metrics::Counter*, MetricKeyHash> request_counters;
  std::unordered_map<MetricKey, metrics::Histogram*, MetricKeyHash> durations;
  std::unordered_map<MetricKey, metrics::Histogram*, MetricKeyHash> ttfts;

  // The child for `key`, looked up in the family (under its lock) only the
  // first time this worker sees the label set.
  template <typename T, typename Make>
  T& child(std::unordered_map<MetricKey, T*, MetricKeyHash>& cache, const MetricKey& key, Make make) {
    auto& slot = cache[key];
    if (!slot) slot = &make();
    return *slot;
  }

  std::shared_ptr<upstream::ConnectionPool> pool(const upstream::BackendPtr& b, size_t max_idle) {
    auto& p = pools[b->id()];
    if (!p) p = std::make_shared<upstream::ConnectionPool>(b, max_idle);
    return p;
  }

  // After a reload, drops the pools (and their idle connections, and the
  // backends they keep alive) of backends the new table no longer has.
  void prunePools(const RouteTablePtr& routes) {
    if (pools_for.lock() == routes) return;
    pools_for = routes;
    for (auto it = pools.begin(); it != pools.end();) {
      bool live = false;
      for (const auto& b : routes->backends) live |= b->id() == it->first;
      it = live ? std::next(it) : pools.erase(it);
    }
  }
};

namespace {

constexpr const char* kRouteNames[] = {"other", "chat_completions", "completions", "models",
                                       "healthz", "readyz", "metrics"};

uint8_t routeIndex(std::string_view target) {
  auto q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  for (uint8_t i = 1; i < std::size(kRouteNames); ++i) {
    static const std::string_view kPaths[] = {"", "/v1/chat/completions", "/v1/completions", "/v1/models",
                                              "/healthz", "/readyz", "/metrics"};
    if (target == kPaths[i]) return i;
  }
  return 0;
}

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// What became of one attempt at the upstream exchange.
enum class Exchange {
  kDone,             // response relayed in full
  kRetryable,        // failed before any response byte on a reused connection
  kFailedBeforeResponse,  // nothing sent to the client yet; error already chosen
  kClientGone,       // the client stopped reading; connection must close
  kAbortedMidBody,   // upstream failed after the client got headers
};

struct ExchangeResult {
  Exchange outcome = Exchange::kDone;
  openai::ApiError error;        // for kFailedBeforeResponse
  int status = 0;                // upstream status relayed
  bool upstream_reusable = false;
  bool client_keep_alive = false;
  bool saw_first_byte = false;
  Clock::time_point first_byte;
};

ExchangeResult retryable() {
  ExchangeResult r;
  r.outcome = Exchange::kRetryable;
  return r;
}

// Answers up to this size (with a Content-Length) are read whole and sent in
// one write; larger ones and streams are relayed buffer by buffer.
constexpr uint64_t kWholeBodyBytes = 64 * 1024;

// Heads of the messages on the hot path are formatted straight into one
// string and written together with the body in one gather write: Beast's
// fields container and serializer cost an allocation per field and a deep
// buffer-sequence adaptor per write (both were visible in profiles). Every
// value written here was parsed by Beast on the way in (so it holds no CR
// or LF) or comes from the validated config.
void addField(std::string& head, std::string_view name, std::string_view value) {
  head.append(name).append(": ").append(value).append("\r\n");
}

void addLength(std::string& head, size_t n) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  addField(head, "Content-Length", std::string_view(digits, static_cast<size_t>(end - digits)));
}

// The head of the answer to the client: the upstream's status and the
// headers worth passing on, our Server and backend headers, and the framing
// (`length`, or chunked when nullopt).
template <typename Fields>
std::string clientHead(const bhttp::response_header<Fields>& from, std::string_view backend, bool keep_alive,
                       std::optional<uint64_t> length) {
  std::string out;
  out.reserve(256);
  char code[8];
  const auto [code_end, code_ec] = std::to_chars(code, code + sizeof code, from.result_int());
  const auto reason = bhttp::obsolete_reason(from.result());
  out.append("HTTP/1.1 ").append(code, code_end).append(" ").append(reason.data(), reason.size()).append("\r\n");
  addField(out, "Server", kServerName);
  for (auto f : {bhttp::field::content_type, bhttp::field::retry_after, bhttp::field::cache_control}) {
    if (auto v = from[f]; !v.empty()) addField(out, bhttp::to_string(f), v);
  }
  addField(out, kBackendHeader, backend);
  if (!keep_alive) addField(out, "Connection", "close");
  if (length) addLength(out, *length);
  else addField(out, "Transfer-Encoding", "chunked");
  out.append("\r\n");
  return out;
}

struct ExchangeArgs {
  upstream::Connection& conn;
  common::TcpStream& client;
  const Request& req;
  const upstream::Backend& backend;
  bool keep_alive;
  bool reused;
};

template <typename Stream>
common::Awaitable<ExchangeResult> exchange(Stream& up, ExchangeArgs a) {
  ExchangeResult r;
  const auto& cfg = a.backend.config();
  const auto first_byte_timeout = std::chrono::milliseconds(cfg.first_byte_timeout_ms());
  const auto idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms());
  boost::system::error_code ec;

  // HTTP/1.1 keeps the connection alive without a Connection header.
  std::string request_head;
  request_head.reserve(256);
  request_head.append(a.req.method_string()).append(" ").append(a.backend.url().path_prefix).append(a.req.target());
  request_head.append(" HTTP/1.1\r\n");
  addField(request_head, "Host", a.backend.url().hostHeader());
  addField(request_head, "Content-Type", "application/json");
  const auto accept = a.req[bhttp::field::accept];
  addField(request_head, "Accept", accept.empty() ? std::string_view("*/*") : std::string_view(accept));
  addField(request_head, "User-Agent", "spillway");
  if (!a.backend.apiKey().empty()) {
    request_head.append("Authorization: Bearer ").append(a.backend.apiKey()).append("\r\n");
  }
  addLength(request_head, a.req.body().size());
  request_head.append("\r\n");
  const std::array<net::const_buffer, 2> request{net::buffer(request_head), net::buffer(a.req.body())};

  auto& lowest = a.conn.lowest();
  lowest.expires_after(first_byte_timeout);
  co_await net::async_write(up, request, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) {
    if (a.reused) co_return retryable();
    r.outcome = Exchange::kFailedBeforeResponse;
    r.error = {502, common::strCat("Upstream ", a.backend.name(), " failed while receiving the request: ", ec.message()),
               "upstream_error", "", "upstream_error"};
    co_return r;
  }

  bhttp::response_parser<bhttp::buffer_body> parser;
  // Not boost::none: Boost 1.74 compares the length against it as "greater than none".
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await bhttp::async_read_header(up, a.conn.buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) {
    if (ec == beast::error::timeout) {
      r.outcome = Exchange::kFailedBeforeResponse;
      r.error = {504, common::strCat("Upstream ", a.backend.name(), " did not answer within ",
                                     cfg.first_byte_timeout_ms(), " ms."),
                 "upstream_error", "", "upstream_timeout"};
      co_return r;
    }
    if (a.reused && !parser.got_some()) co_return retryable();
    r.outcome = Exchange::kFailedBeforeResponse;
    r.error = {502, common::strCat("Upstream ", a.backend.name(), " closed the connection before answering: ", ec.message()),
               "upstream_error", "", "upstream_error"};
    co_return r;
  }

  auto& head = parser.get();
  r.status = head.result_int();
  const bool sse = head[bhttp::field::content_type].find("text/event-stream") != std::string_view::npos;
  const auto content_length = parser.content_length();

  r.client_keep_alive = a.keep_alive;

  // Fast path for small, complete-length answers (every non-streamed
  // completion): read the body whole and send header and body in one write.
  if (!sse && content_length && *content_length <= kWholeBodyBytes) {
    bhttp::response_parser<bhttp::string_body> whole{std::move(parser)};
    co_await bhttp::async_read(up, a.conn.buffer, whole, net::redirect_error(common::kUseAwaitable, ec));
    if (ec) {
      r.outcome = Exchange::kFailedBeforeResponse;
      r.error = {502, common::strCat("Upstream ", a.backend.name(), " broke off its answer: ", ec.message()),
                 "upstream_error", "", "upstream_error"};
      co_return r;
    }
    r.saw_first_byte = true;
    r.first_byte = Clock::now();
    // `parser` (and `head`) were moved from: everything comes from `whole`.
    auto& got = whole.get();
    const std::string out = clientHead(got, a.backend.name(), a.keep_alive, got.body().size());
    const std::array<net::const_buffer, 2> response{net::buffer(out), net::buffer(got.body())};
    a.client.expires_after(idle_timeout);
    co_await net::async_write(a.client, response, net::redirect_error(common::kUseAwaitable, ec));
    if (ec) {
      r.outcome = Exchange::kClientGone;
      co_return r;
    }
    a.client.expires_never();
    r.upstream_reusable = whole.keep_alive();
    r.outcome = Exchange::kDone;
    co_return r;
  }

  const bool chunked = !content_length.has_value() && !parser.is_done();
  const std::string out =
      clientHead(head, a.backend.name(), a.keep_alive,
                 chunked ? std::nullopt : std::optional<uint64_t>(content_length.value_or(0)));
  a.client.expires_after(idle_timeout);
  co_await net::async_write(a.client, net::buffer(out), net::redirect_error(common::kUseAwaitable, ec));
  if (ec) {
    r.outcome = Exchange::kClientGone;
    co_return r;
  }

  // Relay the body one buffer at a time: the next upstream read starts only
  // once the client took the previous buffer, so a slow reader slows the
  // upstream (TCP backpressure) instead of growing our memory.
  char buf[16 * 1024];
  while (!parser.is_done()) {
    head.body().data = buf;
    head.body().size = sizeof buf;
    lowest.expires_after(idle_timeout);
    co_await bhttp::async_read_some(up, a.conn.buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t n = sizeof buf - head.body().size;
    if (n > 0) {
      if (!r.saw_first_byte) {
        r.saw_first_byte = true;
        r.first_byte = Clock::now();
      }
      a.client.expires_after(idle_timeout);
      boost::system::error_code wec;
      if (chunked) {
        co_await net::async_write(a.client, bhttp::make_chunk(net::buffer(buf, n)),
                                  net::redirect_error(common::kUseAwaitable, wec));
      } else {
        co_await net::async_write(a.client, net::buffer(buf, n), net::redirect_error(common::kUseAwaitable, wec));
      }
      if (wec) {
        r.outcome = Exchange::kClientGone;
        co_return r;
      }
    }
    if (ec) {
      // The upstream broke after the client got its headers. Never let that
      // look like a clean end: streams get an SSE error event, and the
      // connection closes without the final chunk either way.
      spdlog::warn("upstream {} failed mid-response: {}", a.backend.name(), ec.message());
      if (sse && chunked) {
        openai::ApiError e{502, common::strCat("Upstream ", a.backend.name(), " failed mid-stream: ", ec.message()),
                           "upstream_error", "", "upstream_disconnected"};
        std::string event = openai::sseData(openai::errorBody(e));
        boost::system::error_code wec;
        co_await net::async_write(a.client, bhttp::make_chunk(net::buffer(event)),
                                  net::redirect_error(common::kUseAwaitable, wec));
      }
      r.outcome = Exchange::kAbortedMidBody;
      co_return r;
    }
  }
  if (chunked) {
    co_await net::async_write(a.client, bhttp::make_chunk_last(), net::redirect_error(common::kUseAwaitable, ec));
    if (ec) {
      r.outcome = Exchange::kClientGone;
      co_return r;
    }
  }
  a.client.expires_never();
  r.upstream_reusable = parser.keep_alive();
  r.outcome = Exchange::kDone;
  co_return r;
}

class BackendSlot {
 public:
  explicit BackendSlot(upstream::BackendPtr b) : b_(std::move(b)) {}
  ~BackendSlot() {
    if (b_) b_->release();
  }
  BackendSlot(const BackendSlot&) = delete;
  BackendSlot& operator=(const BackendSlot&) = delete;

 private:
  upstream::BackendPtr b_;
};

}  // namespace

Gateway::Gateway(RouteTablePtr routes, size_t workers, metrics::Registry& registry)
    : routes_(std::move(routes)), metrics_(std::make_unique<Metrics>(registry)), registry_(registry),
      latency_all_(std::make_shared<const std::vector<double>>(metrics::latencyBucketsSeconds())),
      ttft_all_(std::make_shared<const std::vector<double>>(metrics::latencyBucketsSeconds())) {
  tls_verify_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  tls_verify_->set_default_verify_paths();
  tls_insecure_ = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  for (size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<Worker>());

  registry.callbackGauge("spillway_backend_up", "1 when the backend is healthy, else 0.", {"backend"}, [this] {
    std::vector<std::pair<metrics::Labels, double>> out;
    for (const auto& b : this->routes()->backends) out.push_back({{b->name()}, b->healthy() ? 1.0 : 0.0});
    return out;
  });
  registry.callbackGauge(
      "spillway_backend_state",
      "1 for the backend's current state (up, down, draining, ejected, cooling_down), 0 for the others.",
      {"backend", "state"}, [this] {
        std::vector<std::pair<metrics::Labels, double>> out;
        for (const auto& b : this->routes()->backends) {
          const std::string_view now = b->state();
          for (std::string_view s : upstream::Backend::kStates) {
            out.push_back({{b->name(), std::string(s)}, s == now ? 1.0 : 0.0});
          }
        }
        return out;
      });
  registry.callbackGauge("spillway_backend_weight",
                         "The weight the balancer uses now (configured or operator override, ramped during a slow "
                         "start; 0 when out of rotation).",
                         {"backend"}, [this] {
                           std::vector<std::pair<metrics::Labels, double>> out;
                           for (const auto& b : this->routes()->backends) {
                             out.push_back({{b->name()}, static_cast<double>(b->effectiveWeight())});
                           }
                           return out;
                         });
  registry.callbackGauge("spillway_backend_in_flight", "Requests in flight to each backend.", {"backend"}, [this] {
    std::vector<std::pair<metrics::Labels, double>> out;
    for (const auto& b : this->routes()->backends) out.push_back({{b->name()}, static_cast<double>(b->inFlight())});
    return out;
  });
  registry.callbackGauge(
      "spillway_upstream_connections", "Open upstream connections, by backend and state (idle, active).",
      {"backend", "state"}, [this] {
        std::vector<std::pair<metrics::Labels, double>> out;
        for (const auto& b : this->routes()->backends) {
          double open = static_cast<double>(b->open_connections.load());
          double idle = static_cast<double>(b->idle_connections.load());
          out.push_back({{b->name(), "idle"}, idle});
          out.push_back({{b->name(), "active"}, open - idle});
        }
        return out;
      });
}

Gateway::~Gateway() = default;

int64_t Gateway::inFlight() const { return metrics_->in_flight.value(); }

Gateway::Totals Gateway::totals() const {
  Totals t;
  t.requests = requests_total_.load(std::memory_order_relaxed);
  t.errors = errors_total_.load(std::memory_order_relaxed);
  t.latency_buckets = latency_all_.cumulativeCounts();
  t.latency_sum_seconds = latency_all_.sum();
  t.ttft_buckets = ttft_all_.cumulativeCounts();
  return t;
}

void Gateway::setRoutes(RouteTablePtr routes) { routes_.store(std::move(routes)); }

RouteTablePtr Gateway::routes() const { return routes_.load(); }

net::ssl::context* Gateway::tlsFor(const upstream::Backend& b) const {
  return b.config().tls_insecure_skip_verify() ? tls_insecure_.get() : tls_verify_.get();
}

void Gateway::countRejected(int status) {
  metrics_->requests.with({"other", "", "", std::to_string(status)}).inc();
}

common::Awaitable<bool> Gateway::handle(size_t worker, common::TcpStream& client, Request& req, bool keep_alive) {
  Worker& w = *workers_[worker];
  const uint8_t route_index = routeIndex(req.target());
  const char* route = kRouteNames[route_index];
  auto count = [&](int code) {
    w.child(w.request_counters, MetricKey{route_index, 0, 0, code}, [&]() -> metrics::Counter& {
       return metrics_->requests.with({route, "", "", std::to_string(code)});
     }).inc();
  };

  if (req.method() == bhttp::verb::get) {
    std::string_view r = route;
    if (r == "healthz") {
      count(200);
      co_return co_await writeBody(client, bhttp::status::ok, R"({"status":"ok"})", "application/json", keep_alive);
    }
    if (r == "readyz") {
      auto routes = this->routes();
      bool ready = routes->anyAvailable();
      common::JsonWriter j;
      j.beginObject().key("status").value(ready ? "ready" : "unavailable").key("backends").beginObject();
      for (const auto& b : routes->backends) j.key(b->name()).value(b->state());
      j.endObject().endObject();
      count(ready ? 200 : 503);
      co_return co_await writeBody(client, ready ? bhttp::status::ok : bhttp::status::service_unavailable,
                                   j.take(), "application/json", keep_alive);
    }
    if (r == "metrics") {
      count(200);
      co_return co_await writeBody(client, bhttp::status::ok, registry_.render(),
                                   "text/plain; version=0.0.4; charset=utf-8", keep_alive);
    }
    if (r == "models") {
      auto routes = this->routes();
      common::JsonWriter j;
      j.beginObject().key("object").value("list").key("data").beginArray();
      for (const auto& [model, pool] : routes->pools) {
        j.beginObject().key("id").value(model).key("object").value("model");
        j.key("created").value(int64_t{0}).key("owned_by").value("spillway").endObject();
      }
      j.endArray().endObject();
      count(200);
      co_return co_await writeBody(client, bhttp::status::ok, j.take(), "application/json", keep_alive);
    }
  }

  auto endpoint = openai::endpointForTarget(req.target());
  if (!endpoint) {
    count(404);
    openai::ApiError e{404, common::strCat("Unknown request URL: ", req.method_string(), " ", req.target(), "."),
                       "invalid_request_error", "", "unknown_url"};
    co_return co_await writeApiError(client, std::move(e), keep_alive);
  }
  if (req.method() != bhttp::verb::post) {
    count(405);
    openai::ApiError e{405, common::strCat("Method ", req.method_string(), " is not allowed on ", req.target(), "; use POST."),
                       "invalid_request_error", "", "method_not_allowed"};
    co_return co_await writeApiError(client, std::move(e), keep_alive);
  }

  metrics_->in_flight.add(1);
  bool keep = co_await proxy(w, client, req, keep_alive);
  metrics_->in_flight.add(-1);
  co_return keep;
}

common::Awaitable<bool> Gateway::proxy(Worker& w, common::TcpStream& client, Request& req, bool keep_alive) {
  const auto start = Clock::now();
  const uint8_t route_index = routeIndex(req.target());
  const char* route = kRouteNames[route_index];
  const PoolRoute* pool = nullptr;
  upstream::Backend* backend = nullptr;
  std::string_view backend_name;
  int status = 0;

  // Counts the request under its route, pool's model and backend, once.
  auto finish = [&](int code) {
    const uint64_t pool_id = pool ? pool->id : 0;
    const uint64_t backend_id = backend ? backend->id() : 0;
    const std::string model = pool ? pool->model : "";
    w.child(w.request_counters, MetricKey{route_index, pool_id, backend_id, code}, [&]() -> metrics::Counter& {
       return metrics_->requests.with({route, model, std::string(backend_name), std::to_string(code)});
     }).inc();
    const double seconds = secondsSince(start);
    w.child(w.durations, MetricKey{route_index, pool_id, 0, 0}, [&]() -> metrics::Histogram& {
       return metrics_->duration.with({route, model});
     }).observe(seconds);
    requests_total_.fetch_add(1, std::memory_order_relaxed);
    if (code >= 500) errors_total_.fetch_add(1, std::memory_order_relaxed);
    if (backend) backend->recordOutcome(code >= 500, seconds);
    latency_all_.observe(seconds);
  };

  auto parsed = w.parser.parse(*openai::endpointForTarget(req.target()), req.body(), /*collect_text=*/false);
  if (auto* e = std::get_if<openai::ApiError>(&parsed)) {
    finish(e->status);
    co_return co_await writeApiError(client, *e, keep_alive);
  }
  auto& pr = std::get<openai::ParsedRequest>(parsed);

  RouteTablePtr routes = this->routes();
  w.prunePools(routes);
  pool = routes->find(pr.model);
  if (!pool) {
    // Unknown models are not a label value: clients choose them freely.
    finish(404);
    openai::ApiError e = openai::modelNotFound(pr.model);
    co_return co_await writeApiError(client, std::move(e), keep_alive);
  }
  const std::string& model = pool->model;
  const uint32_t retry_after = routes->config.server().retry_after_seconds();
  const size_t max_idle = routes->config.upstream().max_idle_connections();

  // Up to three tries before the first response byte: a stale keep-alive
  // connection is retried on a fresh one; a backend that refuses connections
  // is marked down and another one picked.
  std::optional<openai::ApiError> last_error;  // why the previous attempt failed
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto pick = pool->balancer->pick(pool->backends);
    if (pick.outcome != balance::PickOutcome::kPicked) {
      if (last_error) {
        // Failover found nobody else: report the failure we actually saw.
        finish(last_error->status);
        co_return co_await writeApiError(client, *last_error, keep_alive, {.backend = backend_name});
      }
      bool busy = pick.outcome == balance::PickOutcome::kAllBusy;
      finish(503);
      openai::ApiError e =
          busy ? openai::serverBusy(common::strCat("Every backend serving `", model,
                                                   "` is at its concurrency limit. Please retry shortly."))
               : openai::ApiError{503, common::strCat("No healthy backend is serving `", model, "` right now."),
                                  "server_error", "", "no_healthy_backend"};
      co_return co_await writeApiError(client, std::move(e), keep_alive, {.retry_after_seconds = retry_after});
    }
    BackendSlot slot(pick.backend);
    const upstream::Backend& b = *pick.backend;
    backend = pick.backend.get();
    backend_name = b.name();
    std::shared_ptr<upstream::ConnectionPool> pool_ref = w.pool(pick.backend, max_idle);
    upstream::ConnectionPool& cpool = *pool_ref;

    for (int fresh_try = 0; fresh_try < 2; ++fresh_try) {
      upstream::ConnectionPtr conn = cpool.takeIdle();
      const bool reused = conn != nullptr;
      if (!conn) {
        auto opened = co_await upstream::openConnection(pick.backend, tlsFor(b),
                                                        std::chrono::milliseconds(b.config().connect_timeout_ms()));
        if (!opened.ok()) {
          metrics_->connects.with({b.name(), "error"}).inc();
          const bool timeout = absl::IsDeadlineExceeded(opened.status());
          if (!timeout) {
            // Refused or unreachable: stop sending it traffic until the
            // health checker sees it answer again.
            if (pick.backend->healthy()) {
              spdlog::warn("backend {} marked down: {}", b.name(), std::string(opened.status().message()));
            }
            pick.backend->setHealthy(false);
          }
          last_error = openai::ApiError{
              timeout ? 504 : 502, common::strCat("Upstream ", b.name(), " is unreachable: ", opened.status().message()),
              "upstream_error", "", timeout ? "upstream_timeout" : "upstream_unreachable"};
          pick.backend->noteError(common::wallClockMs(), last_error->message);
          metrics_->retries.with({b.name(), "connect_failed"}).inc();
          break;  // pick another backend
        }
        metrics_->connects.with({b.name(), "ok"}).inc();
        conn = std::move(*opened);
      }

      ExchangeArgs args{*conn, client, req, b, keep_alive, reused};
      ExchangeResult r = co_await std::visit([&](auto& s) { return exchange(s, args); }, conn->stream);
      switch (r.outcome) {
        case Exchange::kRetryable:
          metrics_->retries.with({b.name(), "stale_connection"}).inc();
          continue;  // the same backend, on a new connection
        case Exchange::kFailedBeforeResponse:
          pick.backend->noteError(common::wallClockMs(), r.error.message);
          finish(r.error.status);
          co_return co_await writeApiError(client, r.error, keep_alive, {.backend = b.name()});
        case Exchange::kDone:
        case Exchange::kClientGone:
        case Exchange::kAbortedMidBody: {
          status = r.status;
          if (r.outcome == Exchange::kAbortedMidBody) {
            pick.backend->noteError(common::wallClockMs(), "the response broke off mid-body");
          } else if (status >= 500) {
            pick.backend->noteError(common::wallClockMs(), common::strCat("answered HTTP ", status));
          }
          if (r.saw_first_byte) {
            const double ttft = std::chrono::duration<double>(r.first_byte - start).count();
            w.child(w.ttfts, MetricKey{0, pool->id, b.id(), 0}, [&]() -> metrics::Histogram& {
               return metrics_->ttft.with({model, b.name()});
             }).observe(ttft);
            ttft_all_.observe(ttft);
          }
          if (r.outcome == Exchange::kDone) {
            conn->requests++;
            if (r.upstream_reusable) cpool.putBack(std::move(conn));
            finish(status);
            co_return r.client_keep_alive;
          }
          // Count broken responses apart from clean ones: 499 (client gone)
          // and 502 (upstream broke mid-body), as nginx does.
          finish(r.outcome == Exchange::kClientGone ? 499 : 502);
          co_return false;
        }
      }
    }
  }
  if (!last_error) {
    last_error = openai::ApiError{502, "Every upstream attempt failed before a response began.", "upstream_error", "",
                                  "upstream_error"};
  }
  finish(last_error->status);
  co_return co_await writeApiError(client, *last_error, keep_alive, {.backend = backend_name});
}

}  // namespace spillway::http
