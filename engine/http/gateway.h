// The request handler behind the front server: answers the admin endpoints
// and calls the chain for each completion request — parse, the routing
// snapshot's stages (pipeline/stage.h; routing/route_builder.h lists them
// in order, the ones that wait co_awaited), then the attempt loop
// (pipeline/attempt_loop.h) — and writes what they decided: the upstream's
// answer already relayed, a stage's error or whole answer, or the refusal
// the loop held back. It completes each request once: its own metrics,
// then the snapshot's completion observers.
//
// Threading: handle() runs on the worker thread that owns the connection;
// everything per worker (connection pools, metric handles) lives in that
// worker's slot and is touched by that thread only.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "common/asio_types.h"
#include "pipeline/attempt_loop.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"
#include "metrics/registry.h"

namespace spillway::http {

class ClientStream;  // http/client_stream.h

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using pipeline::RouteTable;
using pipeline::RouteTablePtr;

class Gateway {
 public:
  // `workers` must equal the number of threads that will call handle().
  Gateway(RouteTablePtr routes, size_t workers, metrics::Registry& registry);
  ~Gateway();

  // What a listener serves: the front listener the API (and /metrics
  // unless server.metrics_listen moved it); the metrics listener /metrics,
  // /healthz and /readyz only.
  struct Scope {
    bool api = true;
    bool metrics = true;
  };
  // Serves one request; returns whether the connection may be kept open.
  // `keep_alive` is false when the client or a drain asked to close.
  common::Awaitable<bool> handle(size_t worker, ClientStream& client, Request& req, bool keep_alive,
                                 Scope scope);

  // Swaps in a new routing table (config reload). Thread-safe.
  void setRoutes(RouteTablePtr routes);
  RouteTablePtr routes() const;

  // Draining (the engine is shutting down): /readyz answers 503 "draining"
  // so load balancers stop sending here first. Thread-safe.
  void setDraining(bool draining) { draining_.store(draining, std::memory_order_relaxed); }

  // Counts a request the front server answered itself (400/408/413/431).
  void countRejected(int status);

  // Requests in flight now, over every worker.
  int64_t inFlight() const;

  // Totals since start over every proxied request, for live snapshots.
  // Proxied requests by endpoint family, for the console's split of traffic.
  enum EndpointFamily { kChat = 0, kEmbeddings = 1, kResponses = 2, kPassthrough = 3 };
  struct Totals {
    std::array<uint64_t, 4> by_endpoint{};  // indexed by EndpointFamily
    uint64_t requests = 0;
    uint64_t errors = 0;  // status >= 500, and responses broken mid-body
    uint64_t shed = 0;      // turned away by admission (429/503 with a drop reason)
    uint64_t degraded = 0;  // answered at a degradation level
    uint64_t requeued = 0;  // backends' busy answers (429/503) requeued instead of relayed
    std::vector<uint64_t> latency_buckets;  // cumulative, bounds latencyBucketsSeconds()
    double latency_sum_seconds = 0;
    std::vector<uint64_t> ttft_buckets;
  };
  Totals totals() const;

  // Metric handles the workers cache (by pool and backend ids); bounded by
  // the live routing table, whatever the number of config applies.
  size_t cachedMetricHandles() const;
  // Requests re-sent to another backend since start.
  uint64_t retriesTotal() const;

  struct Worker;
  struct Metrics;

 private:
  common::Awaitable<bool> proxy(Worker& w, ClientStream& client, Request& req, openai::Endpoint endpoint,
                                RouteTablePtr routes, bool keep_alive);
  // Relays the refusal the attempt loop held back (nobody else took it).
  common::Awaitable<bool> answerHeld(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                     pipeline::HeldAnswer held, bool keep_alive);
  // Answers a request a stage answered (stage.h): its error, its whole
  // answer, or nothing more when it wrote the answer itself.
  common::Awaitable<bool> answer(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                 bool keep_alive);
  // Answers a stage's whole answer (ctx.answer_body: degradation level 1).
  common::Awaitable<bool> answerDirect(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                       bool keep_alive);
  // Answers ctx.error (set by a stage or the attempt loop) and completes.
  common::Awaitable<bool> answerError(Worker& w, ClientStream& client, pipeline::RequestContext& ctx,
                                      bool keep_alive);
  // The completion observers: metrics here, then the table's observers.
  void complete(Worker& w, pipeline::RequestContext& ctx);

  std::atomic<std::shared_ptr<const RouteTable>> routes_;
  std::atomic<bool> draining_{false};
  upstream::TlsContexts tls_;
  std::unique_ptr<Metrics> metrics_;
  pipeline::AttemptLoop attempts_;
  std::vector<std::unique_ptr<Worker>> workers_;
  metrics::Registry& registry_;
  // Callback gauges over this gateway's state; declared last so they are
  // unregistered before anything they read is destroyed.

  std::vector<metrics::Registry::Registration> gauges_;

 public:
  // The TLS context for https backends (health checks share it).
  boost::asio::ssl::context* tlsFor(const upstream::Backend& b) const;
};

}  // namespace spillway::http
