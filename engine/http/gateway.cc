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
#include "http/client_sink.h"
#include "http/client_stream.h"
#include "http/gateway_worker.h"
#include "http/responses.h"
#include "openai/openai.h"
#include "pipeline/attempt_loop.h"
#include "pipeline/identify.h"

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
        duration(r.histogram("spillway_request_duration_seconds",
                             "End-to-end request latency as the client sees it.", {"route", "model"},
                             metrics::latencyBucketsSeconds())),
        ttft(r.histogram("spillway_time_to_first_token_seconds",
                         "Time from request arrival to the first body byte from the backend.",
                         {"model", "backend"}, metrics::latencyBucketsSeconds())),
        shed(r.counter("spillway_admission_shed_total",
                       "Requests admission turned away, by model, priority class and reason (x-spillway-drop-reason).",
                       {"model", "class", "reason"})),
        degraded(r.counter("spillway_degraded_total", "Requests answered degraded, by model and level.",
                           {"model", "level"})) {}

  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Histogram>& duration;
  metrics::Family<metrics::Histogram>& ttft;
  metrics::Family<metrics::Counter>& shed;
  metrics::Family<metrics::Counter>& degraded;
};

namespace {

// The route label of every request (metrics): the admin endpoints by path,
// the proxied ones by endpoint.
constexpr const char* kRouteNames[] = {"other",   "chat_completions", "completions", "models",     "healthz",
                                       "readyz",  "metrics",          "embeddings",  "responses",  "passthrough"};

uint8_t routeIndex(openai::Endpoint e) {
  switch (e) {
    case openai::Endpoint::kChatCompletions: return 1;
    case openai::Endpoint::kCompletions: return 2;
    case openai::Endpoint::kEmbeddings: return 7;
    case openai::Endpoint::kResponses:
    case openai::Endpoint::kResponseById: return 8;
    case openai::Endpoint::kPassthrough: return 9;
  }
  return 0;
}

// The admin endpoints' route by path; 0 ("other") for anything else.
uint8_t adminRouteIndex(std::string_view target) {
  target = openai::targetPath(target);
  static const std::string_view kAdmin[] = {"/v1/models", "/healthz", "/readyz", "/metrics"};  // indices 3..6
  for (uint8_t i = 0; i < std::size(kAdmin); ++i) {
    if (target == kAdmin[i]) return 3 + i;
  }
  return 0;  // passthrough routes are counted by the request path
}

Gateway::EndpointFamily endpointFamily(openai::Endpoint e) {
  switch (e) {
    case openai::Endpoint::kEmbeddings: return Gateway::kEmbeddings;
    case openai::Endpoint::kResponses:
    case openai::Endpoint::kResponseById: return Gateway::kResponses;
    case openai::Endpoint::kPassthrough: return Gateway::kPassthrough;
    default: return Gateway::kChat;
  }
}

// GET /v1/models: every pool's model once. `?include=endpoints` adds the
// endpoints each serves (what the console shows).
std::string modelList(const pipeline::RouteTable& routes, bool with_endpoints) {
  common::JsonWriter j;
  j.beginObject().key("object").value("list").key("data").beginArray();
  for (const auto& [model, pool] : routes.pools) {
    j.beginObject().key("id").value(model).key("object").value("model");
    j.key("created").value(int64_t{0}).key("owned_by").value(pool.owned_by);
    if (with_endpoints) {
      j.key("endpoints").beginArray();
      for (openai::Endpoint e : pool.endpoints) j.value(openai::endpointName(e));
      j.endArray();
    }
    j.endObject();
  }
  j.endArray().endObject();
  return j.take();
}

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }


// The client connection as stages see it (pipeline/client_channel.h).
class ClientConnection final : public pipeline::ClientChannel {
 public:
  ClientConnection(ClientStream& client, bool keep_alive) : client_(client), keep_alive_(keep_alive) {}
  std::unique_ptr<upstream::ResponseSink> sink(const std::string& headers,
                                               std::chrono::milliseconds idle_timeout) override {
    return std::make_unique<ClientSink>(client_, keep_alive_, idle_timeout, headers);
  }

 private:
  ClientStream& client_;
  const bool keep_alive_;
};

}  // namespace

Gateway::Gateway(RouteTablePtr routes, size_t workers, metrics::Registry& registry)
    : routes_(std::move(routes)),
      metrics_(std::make_unique<Metrics>(registry)),
      attempts_(registry, tls_),
      registry_(registry) {
  for (size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<Worker>());

  gauges_.push_back(registry.scopedCallbackGauge("spillway_requests_in_flight", "Requests being served now.", {}, [this] {
    return std::vector<std::pair<metrics::Labels, double>>{{{}, static_cast<double>(inFlight())}};
  }));
}

Gateway::~Gateway() = default;  // gauges_ first: their callbacks read this gateway

int64_t Gateway::inFlight() const {
  int64_t n = 0;
  for (const auto& w : workers_) n += w->in_flight.load(std::memory_order_relaxed);
  return n;
}

size_t Gateway::cachedMetricHandles() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->metric_handles.load(std::memory_order_relaxed);
  return n;
}

uint64_t Gateway::retriesTotal() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->retries.load(std::memory_order_relaxed);
  return n;
}

Gateway::Totals Gateway::totals() const {
  Totals t;
  for (const auto& w : workers_) {
    t.requests += w->requests.load(std::memory_order_relaxed);
    t.errors += w->errors.load(std::memory_order_relaxed);
    t.shed += w->shed.load(std::memory_order_relaxed);
    t.degraded += w->degraded.load(std::memory_order_relaxed);
    t.requeued += w->requeued.load(std::memory_order_relaxed);
    for (size_t i = 0; i < t.by_endpoint.size(); ++i) t.by_endpoint[i] += w->by_endpoint[i].load(std::memory_order_relaxed);
    auto add = [](std::vector<uint64_t>& into, const std::vector<uint64_t>& from) {
      if (into.empty()) into.assign(from.size(), 0);
      for (size_t i = 0; i < from.size(); ++i) into[i] += from[i];
    };
    add(t.latency_buckets, w->latency_all.cumulativeCounts());
    add(t.ttft_buckets, w->ttft_all.cumulativeCounts());
    t.latency_sum_seconds += w->latency_all.sum();
  }
  return t;
}

void Gateway::setRoutes(RouteTablePtr routes) { routes_.store(std::move(routes)); }

RouteTablePtr Gateway::routes() const { return routes_.load(); }

net::ssl::context* Gateway::tlsFor(const upstream::Backend& b) const { return tls_.forBackend(b); }

void Gateway::countRejected(int status) {
  metrics_->requests.with({"other", "", "", std::to_string(status)}).inc();
}

common::Awaitable<bool> Gateway::handle(size_t worker, ClientStream& client, Request& req, bool keep_alive,
                                        Scope scope) {
  Worker& w = *workers_[worker];
  std::optional<openai::Endpoint> endpoint = openai::endpointForTarget(req.target());
  const uint8_t route_index = endpoint ? routeIndex(*endpoint) : adminRouteIndex(req.target());
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
      const bool draining = draining_.load(std::memory_order_relaxed);
      const bool ready = !draining && routes->anyAvailable();
      common::JsonWriter j;
      j.beginObject().key("status").value(draining ? "draining" : ready ? "ready" : "unavailable").key("backends").beginObject();
      for (const auto& b : routes->backends) j.key(b->name()).value(b->state());
      j.endObject().endObject();
      count(ready ? 200 : 503);
      co_return co_await writeBody(client, ready ? bhttp::status::ok : bhttp::status::service_unavailable,
                                   j.take(), "application/json", keep_alive);
    }
    if (r == "metrics" && !scope.metrics) {
      count(404);
      openai::ApiError e{404, "/metrics is served on the metrics listener (server.metrics_listen), not here.",
                         "invalid_request_error", "", "unknown_url"};
      co_return co_await writeApiError(client, std::move(e), keep_alive);
    }
    if (r == "metrics") {
      count(200);
      co_return co_await writeBody(client, bhttp::status::ok, registry_.render(),
                                   "text/plain; version=0.0.4; charset=utf-8", keep_alive);
    }
    if (r == "models" && scope.api) {
      const bool with_endpoints = req.target().find("include=endpoints") != std::string_view::npos;
      count(200);
      co_return co_await writeBody(client, bhttp::status::ok, modelList(*this->routes(), with_endpoints),
                                   "application/json", keep_alive);
    }
  }

  if (!scope.api) {
    count(404);
    openai::ApiError e{404, common::strCat("Unknown request URL: ", req.method_string(), " ", req.target(),
                                           ". This listener (server.metrics_listen) serves GET /metrics, /healthz and "
                                           "/readyz only."),
                       "invalid_request_error", "", "unknown_url"};
    co_return co_await writeApiError(client, std::move(e), keep_alive);
  }
  RouteTablePtr routes = this->routes();
  if (!endpoint && routes->passthrough.contains(openai::targetPath(req.target()))) {
    endpoint = openai::Endpoint::kPassthrough;
  }
  if (!endpoint) {
    count(404);
    openai::ApiError e{404, common::strCat("Unknown request URL: ", req.method_string(), " ", req.target(),
                                           ". This gateway serves ", routes->served_routes, "."),
                       "invalid_request_error", "", "unknown_url"};
    co_return co_await writeApiError(client, std::move(e), keep_alive);
  }
  // A stored response is read, deleted or cancelled; everything else is a POST.
  const bool by_id = *endpoint == openai::Endpoint::kResponseById;
  const bool method_ok = req.method() == bhttp::verb::post ||
                         (by_id && (req.method() == bhttp::verb::get || req.method() == bhttp::verb::delete_));
  if (!method_ok) {
    count(405);
    openai::ApiError e{405, common::strCat("Method ", req.method_string(), " is not allowed on ", req.target(), "; use ",
                                           by_id ? "GET, DELETE or POST" : "POST", "."),
                       "invalid_request_error", "", "method_not_allowed"};
    co_return co_await writeApiError(client, std::move(e), keep_alive);
  }

  w.in_flight.fetch_add(1, std::memory_order_relaxed);
  bool keep = co_await proxy(w, client, req, *endpoint, std::move(routes), keep_alive);
  w.in_flight.fetch_sub(1, std::memory_order_relaxed);
  co_return keep;
}

// The request path, top to bottom: parse, the snapshot's stages (stage.h;
// the cache's slower tiers and coalescing are the last of them), then the
// attempt loop (pipeline/attempt_loop.h). Every way out goes through
// complete() once.
common::Awaitable<bool> Gateway::proxy(Worker& w, ClientStream& client, Request& req, openai::Endpoint endpoint,
                                       RouteTablePtr routes, bool keep_alive) {
  pipeline::RequestContext ctx;
  ctx.start = Clock::now();
  ctx.trace = pipeline::traceFor(req["traceparent"], req["tracestate"]);
  common::strAppend(&ctx.response_headers, "x-spillway-trace-id: ", ctx.trace.trace_id, "\r\n");
  ctx.route = routeIndex(endpoint);
  ctx.headers = &req.base();
  ctx.method = req.method_string();
  ctx.target = req.target();
  ctx.parsed.endpoint = endpoint;  // what a request that fails to parse asked for
  ctx.body = req.body();
  ctx.client = &client.socket();
  ctx.client_peer = &client.peerAddressCache();
  ctx.caller.client_cert_cn = client.clientCertCn();
  ClientConnection channel(client, keep_alive);
  ctx.channel = &channel;
  ctx.routes = routes.get();
  w.prune(routes);

  const std::string_view content_type = req[bhttp::field::content_type];
  auto parsed = w.parser.parse(endpoint, req.body(), /*collect_text=*/false, content_type);
  if (auto* e = std::get_if<openai::ApiError>(&parsed)) {
    ctx.error = std::move(*e);
    co_return co_await answerError(w, client, ctx, keep_alive);
  }
  ctx.parsed = std::move(std::get<openai::ParsedRequest>(parsed));
  ctx.response_id = openai::responseIdOfTarget(req.target());
  // A multipart form (audio) is not text: its size says nothing of tokens.
  ctx.prompt_tokens_estimate = ctx.parsed.multipart ? 0 : static_cast<uint32_t>(req.body().size() / 4);

  for (const auto& stage : routes->stages) {
    pipeline::Verdict verdict;
    if (stage->waits(ctx)) {
      verdict = co_await stage->run(ctx);
    } else {
      verdict = stage->process(ctx);
    }
    if (verdict == pipeline::Verdict::kAnswered) co_return co_await answer(w, client, ctx, keep_alive);
  }
  const std::string trace_headers = ctx.trace.upstreamHeaders();
  const upstream::ExchangeRequest exchange{.method = req.method_string(),
                                           .target = req.target(),
                                           .accept = req[bhttp::field::accept],
                                           .body = req.body(),
                                           .content_type = content_type,
                                           .endpoint = endpoint,
                                           .hold_refusals = false,
                                           .busy_retry_after = routes->retry_after_text,
                                           .extra_headers = trace_headers,
                                           .trace_id = ctx.trace.trace_id};
  pipeline::AttemptEnd end = co_await attempts_.run(ctx, exchange, w.connections);
  switch (end.kind) {
    case pipeline::AttemptEnd::Kind::kRelayed:
      complete(w, ctx);
      co_return keep_alive && end.keep_connection;
    case pipeline::AttemptEnd::Kind::kHeld:
      co_return co_await answerHeld(w, client, ctx, std::move(end.held), keep_alive);
    case pipeline::AttemptEnd::Kind::kAnswer:
      break;
  }
  co_return co_await answer(w, client, ctx, keep_alive);
}

common::Awaitable<bool> Gateway::answer(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                        bool keep_alive) {
  if (ctx.error) co_return co_await answerError(w, client, ctx, keep_alive);
  if (ctx.answer_body) co_return co_await answerDirect(w, client, ctx, keep_alive);
  // The stage wrote the answer itself (stage.h).
  complete(w, ctx);
  co_return keep_alive && ctx.keep_connection;
}

common::Awaitable<bool> Gateway::answerError(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                             bool keep_alive) {
  ctx.status = ctx.error->status;
  complete(w, ctx);
  const std::string backend = ctx.backend ? ctx.backend->name() : std::string();
  if (ctx.drop != pipeline::DropReason::kNone) {
    common::strAppend(&ctx.response_headers, "x-spillway-drop-reason: ", pipeline::dropReasonName(ctx.drop), "\r\n");
  }
  openai::ApiError e = std::move(*ctx.error);
  const ExtraHeaders extra{.retry_after_seconds = ctx.retry_after_seconds, .backend = backend,
                           .lines = ctx.response_headers};
  if (ctx.answer_body) {
    // A static page for browsers (degradation level 3).
    std::string body = std::move(*ctx.answer_body);
    const std::string content_type = ctx.answer_content_type;
    co_return co_await writeBody(client, static_cast<bhttp::status>(e.status), std::move(body), content_type,
                                 keep_alive, extra);
  }
  co_return co_await writeApiError(client, std::move(e), keep_alive, extra);
}

common::Awaitable<bool> Gateway::answerDirect(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                              bool keep_alive) {
  ctx.status = 200;
  complete(w, ctx);
  std::string body = std::move(*ctx.answer_body);
  const std::string content_type = ctx.answer_content_type;
  const ExtraHeaders extra{.lines = ctx.response_headers};
  co_return co_await writeBody(client, bhttp::status::ok, std::move(body), content_type, keep_alive, extra);
}

common::Awaitable<bool> Gateway::answerHeld(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                            pipeline::HeldAnswer held, bool keep_alive) {
  complete(w, ctx);
  // Named locals, not temporaries, in the co_await (GCC 12, see ARCHITECTURE).
  std::string body = std::move(held.body);
  const ExtraHeaders extra{.retry_after_seconds = held.retry_after_seconds, .backend = held.backend,
                           .lines = ctx.response_headers};
  co_return co_await writeBody(client, static_cast<bhttp::status>(held.status), std::move(body), held.content_type,
                               keep_alive, extra);
}

void Gateway::complete(Worker& w, pipeline::RequestContext& ctx) {
  const uint64_t pool_id = ctx.pool ? ctx.pool->id : 0;
  const uint64_t backend_id = ctx.backend ? ctx.backend->id() : 0;
  const char* route = kRouteNames[ctx.route];
  const int code = ctx.status;
  auto model = [&] { return ctx.pool ? ctx.pool->model : std::string(); };
  auto backend_name = [&] { return ctx.backend ? ctx.backend->name() : std::string(); };
  w.child(w.request_counters, MetricKey{ctx.route, pool_id, backend_id, code}, [&]() -> metrics::Counter& {
     return metrics_->requests.with({route, model(), backend_name(), std::to_string(code)});
   }).inc();
  const double seconds = secondsSince(ctx.start);
  w.child(w.durations, MetricKey{ctx.route, pool_id, 0, 0}, [&]() -> metrics::Histogram& {
     return metrics_->duration.with({route, model()});
   }).observe(seconds);
  // Time to first token: the first output delta where a sink saw it (a
  // Responses stream opens with events that carry no token), else the
  // first byte.
  const std::optional<Clock::time_point> first_token =
      ctx.first_token ? ctx.first_token
                      : (ctx.parsed.endpoint == openai::Endpoint::kResponses && ctx.parsed.stream ? std::nullopt
                                                                                                 : ctx.first_byte);
  if (first_token && ctx.backend) {
    const double ttft = std::chrono::duration<double>(*first_token - ctx.start).count();
    w.child(w.ttfts, MetricKey{0, pool_id, backend_id, 0}, [&]() -> metrics::Histogram& {
       return metrics_->ttft.with({model(), backend_name()});
     }).observe(ttft);
    w.ttft_all.observe(ttft);
  }
  w.latency_all.observe(seconds);
  w.requests.fetch_add(1, std::memory_order_relaxed);
  w.by_endpoint[endpointFamily(ctx.parsed.endpoint)].fetch_add(1, std::memory_order_relaxed);
  if (ctx.retries) w.retries.fetch_add(ctx.retries, std::memory_order_relaxed);
  if (ctx.requeues) w.requeued.fetch_add(ctx.requeues, std::memory_order_relaxed);
  if (code >= 500) w.errors.fetch_add(1, std::memory_order_relaxed);
  if (ctx.drop != pipeline::DropReason::kNone) {
    w.shed.fetch_add(1, std::memory_order_relaxed);
    metrics_->shed.with({model(), std::string(pipeline::priorityName(ctx.caller.priority)),
                         std::string(pipeline::dropReasonName(ctx.drop))}).inc();
  }
  if (ctx.degraded) {
    w.degraded.fetch_add(1, std::memory_order_relaxed);
    metrics_->degraded.with({model(), std::to_string(ctx.degraded)}).inc();
  }
  for (const auto& o : ctx.routes->observers) o->onComplete(ctx);
}

}  // namespace spillway::http
