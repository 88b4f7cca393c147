// The engine facade: what the daemon (spillwayd) and the console use. It
// owns the worker threads, the in-process simulators of sim:// backends, the
// gateway and its front listener, the health checker, and the store of
// config versions and audit events.
//
// Threading: every public method is thread-safe; changes (apply, rollback,
// drain) are serialized. The engine's own threads never call back.
#pragma once

#include <array>
#include <map>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config_error.h"
#include "fleet/registry.h"
#include "gpu/gpu_status.h"
#include "observe/request_events.h"
#include "spillway/v1/config.pb.h"
#include "store/store.h"

namespace spillway {

namespace sim {
class SimServer;
}
namespace metrics {
class Registry;
}

struct BackendStatus {
  std::string name;
  std::string url;  // where requests go (sim:// backends show their loopback port)
  std::string state;  // upstream::Backend::state(): up, down, draining, ejected, cooling_down
  bool available = false;  // may take new requests (up or cooling down)
  bool healthy = false;
  bool draining = false;
  bool ejected = false;
  bool cooling_down = false;  // back from an ejection, weight still ramping up
  int64_t ejected_until_ms = 0;
  std::vector<std::string> pools;  // models whose pools include it
  uint32_t configured_weight = 1;
  int32_t weight_override = -1;  // -1: none
  uint32_t weight = 1;           // what the balancer uses now
  uint32_t max_concurrency = 0;
  int64_t in_flight = 0;
  int64_t open_connections = 0;
  int64_t idle_connections = 0;
  uint64_t requests = 0;  // finished through it, since it was created
  uint64_t failures = 0;  // of those, status >= 500 or broken
  double ewma_latency_seconds = 0;
  int64_t last_error_ms = 0;
  std::string last_error;
  // Resilience and balancing inputs.
  bool backing_off = false;         // answered 429/503: no new requests until back_off_until_ms
  int64_t back_off_until_ms = 0;
  uint64_t back_offs = 0;           // since the backend was configured
  uint64_t ejections = 0;           // automatic (outlier detection), since configured
  uint32_t consecutive_failures = 0;
  double ewma_ms_per_token = 0;     // what latency_weighted balances on
  // The backend's own load (upstream.load_metrics), while fresh; -1 when
  // not read or stale.
  double reported_running = -1;
  double reported_waiting = -1;
  double reported_cache_usage = -1;
  // Admission's limit for it: max_concurrency where set, else learned (0:
  // none, admission off).
  int64_t concurrency_limit = 0;
  bool limit_learned = false;
  double limit_baseline_ms = -1;
};

// Admission control now (Engine::admission()).
struct PoolAdmissionStatus {
  std::string model;
  std::array<uint64_t, 3> depth{};        // critical, standard, sheddable
  std::map<std::string, uint64_t> shed;   // by drop reason, since start
  double service_rate = 0;
  double oldest_wait_seconds = 0;
  int level = 0;       // in force
  int pinned = -1;     // -1: automatic
  int automatic = 0;
  std::vector<std::pair<std::string, double>> tenants;  // VTC counters, largest first
  std::vector<std::pair<std::string, uint64_t>> tenant_sheds;  // requests turned away, most first
  uint64_t admitted = 0;
  // Latency objectives per class: the configured objective, what a newcomer
  // would wait now, and the requests answered in full inside it, of all.
  std::array<double, 3> objective_seconds{};
  std::array<double, 3> predicted_wait_seconds{};
  std::array<uint64_t, 3> objective_met{}, objective_total{};
  std::array<double, 2> service_seconds{};  // non-streams (whole answer), streams (first token)
};
struct LimitUsageStatus {
  std::string scope;
  double requests_remaining = -1, requests_limit = 0;
  double tokens_remaining = -1, tokens_limit = 0;
};
struct AdmissionStatus {
  bool enabled = true;
  std::vector<PoolAdmissionStatus> pools;
  std::vector<LimitUsageStatus> limits;  // fullest first
  uint64_t rate_limited = 0;
  bool redis_configured = false;
  bool redis_up = false;
  uint64_t redis_fallbacks = 0;
};

// The response cache now (Engine::cache()).
struct CacheTierStatus {
  std::string tier;  // memory, disk, redis
  bool enabled = false;
  uint64_t entries = 0, bytes = 0, hits = 0, evictions = 0, errors = 0, skipped = 0;
  std::string detail;  // where it lives; "(down)" for an unreachable Redis
};
struct CacheStatus {
  bool enabled = false;
  std::string mode, scope;
  std::vector<CacheTierStatus> tiers;
  uint64_t hits = 0, misses = 0, bypasses = 0, coalesced = 0, stale = 0, stores = 0;
  uint64_t bloom_skips = 0;
  double bloom_fp_estimate = 0;
  uint64_t bloom_bits = 0;
  uint64_t flights = 0;
  uint64_t item_hits = 0, item_misses = 0;  // embedding inputs, each on its own
};
// Where a request's answer is cached (Engine::cacheLookup()).
struct CacheLookupResult {
  std::string key;  // 32 hex digits
  bool cacheable = false;  // deterministic under cache.mode
  bool found = false;
  bool stale = false;
  std::string tier;
  uint64_t bytes = 0;
  int64_t created_ms = 0, expires_ms = 0;
  std::string form;  // json, sse, sse+usage
};

// How a pool picks, and what it decides on now.
struct PoolStatus {
  std::string model;
  std::string policy;  // "least_outstanding", ...
  std::vector<std::string> backends;
  std::vector<double> scores;  // per backend (same order): the policy's score, 0 where it has none
  int64_t active_requests = 0;  // in the pool now (the retry budget's base)
  int64_t retries_in_progress = 0;
};

// Something that happened to a backend without an operator (automatic
// ejection, back-off after 429/503).
struct BackendEventInfo {
  int64_t ts_ms = 0;
  std::string backend;
  std::string kind;  // "ejected", "backed_off"
  std::string reason;
  int64_t until_ms = 0;
};

// The gateway's own limits (server.overload) as they stand.
struct GatewayOverloadStatus {
  int64_t open_connections = 0, max_connections = 0;
  int64_t active_requests = 0, max_active_requests = 0;
  uint64_t memory_bytes = 0, memory_budget_bytes = 0;  // memory_bytes: at the last check (0 without a budget)
  bool keep_alive_off = false;  // a limit is near: answers close their connection
  // Turned away since the listener started, by the limit that did it.
  uint64_t refused_connections = 0, refused_per_client = 0, refused_requests = 0, refused_memory = 0;
  uint64_t refused() const { return refused_connections + refused_per_client + refused_requests + refused_memory; }
};

// HTTPS at the front door (server.tls) as it stands.
struct FrontTlsStatus {
  bool enabled = false;
  std::string subject;  // the serving certificate's subject ("CN=...")
  int64_t not_after_unix = 0, reloaded_unix = 0;
  bool client_certificates = false, client_certificates_required = false;
  uint64_t handshake_failures = 0, reloads = 0, reload_failures = 0;
  std::string last_error;  // of the last failed certificate reload ("" once one succeeds)
};

// Counters since start, for live views; two of them give an interval.
struct EngineTotals {
  int64_t ts_ms = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;  // status >= 500 and broken responses
  int64_t in_flight = 0;
  std::vector<uint64_t> latency_buckets;  // cumulative; bounds metrics::latencyBucketsSeconds()
  double latency_sum_seconds = 0;
  std::vector<uint64_t> ttft_buckets;
  uint64_t retries = 0;  // re-sent to another backend
  uint64_t shed = 0;      // turned away by admission (429/503 with a drop reason)
  uint64_t degraded = 0;  // answered at a degradation level
  uint64_t requeued = 0;  // backends' busy answers requeued instead of relayed
  uint64_t queued = 0;    // waiting in the gateway queues now
  // The response cache: hits by tier (memory, disk, redis), and every
  // cacheable request it saw (hits, misses, coalesced, stale).
  std::array<uint64_t, 3> cache_hits{};
  uint64_t cache_lookups = 0;
  uint64_t cache_coalesced = 0;
  // Proxied requests by endpoint: chat and completions, embeddings, the
  // Responses API, passthrough routes.
  std::array<uint64_t, 4> requests_by_endpoint{};
  uint64_t embedding_item_hits = 0, embedding_item_lookups = 0;  // inputs, each on its own
  // Requests answered in full inside their latency objective, and all
  // counted, per class (critical, standard, sheddable), every pool together.
  std::array<uint64_t, 3> objective_met{}, objective_total{};
  // Connections and requests the gateway's own limits turned away.
  uint64_t overload_refused = 0;
};

struct IntervalStats {
  double requests_per_second = 0;
  double error_rate = 0;  // errors / requests in the interval
  double latency_mean_seconds = 0;
  double latency_p50_seconds = 0;
  double latency_p99_seconds = 0;
  double ttft_p95_seconds = 0;
  double retries_per_second = 0;
  double shed_per_second = 0;
  double degraded_per_second = 0;
  double requeued_per_second = 0;
  // Shares of the interval's cacheable requests answered by each tier, by
  // any tier, and shared through coalescing (per second); -1 with none.
  std::array<double, 3> cache_tier_hit_ratio{-1, -1, -1};
  double cache_hit_ratio = -1;
  double coalesced_per_second = 0;
  // Requests per second by endpoint (EngineTotals::requests_by_endpoint's order).
  std::array<double, 4> endpoint_per_second{};
  double embedding_item_hit_ratio = -1;  // share of the interval's embedding inputs from the cache; -1 with none
  // Share of each class's requests answered in full inside its objective
  // (critical, standard, sheddable); -1 with none in the interval.
  std::array<double, 3> objective_attainment{-1, -1, -1};
  double overload_refused_per_second = 0;  // the gateway's own limits (server.overload)
};

IntervalStats intervalStats(const EngineTotals& before, const EngineTotals& after);

struct EngineOptions {
  // Directory for the store (spillway.db); "" keeps state in memory only.
  std::string data_dir;
  // Who is recorded as the author of the start-up config version.
  std::string actor = "startup";
  // Record 1-second metric points in the store (history for charts).
  bool record_history = true;
  // Tests: the clock (Unix ms) the response cache ages entries by; null is
  // the wall clock.
  std::function<int64_t()> cache_clock_ms;
  // gpu.workers' {spillwayd}: "" is this binary when it is spillwayd, else
  // a spillwayd beside it.
  std::string spillwayd_path;
  // Tests: the NVML library to load ("" is the driver's libnvidia-ml.so.1).
  std::string nvml_library;
  // How server.overload.memory_budget_bytes is measured (bytes in use);
  // null: resident memory. spillwayd passes its allocator's committed bytes.
  std::function<uint64_t()> memory_gauge;
};

// Who changes what, and on which version the change was based.
struct ChangeRequest {
  std::string actor = "local";
  std::string comment;
  // Optimistic concurrency: the version the caller read. The change is
  // refused when another landed since. -1 skips the check.
  int64_t base_version = -1;
  bool dry_run = false;  // validate and diff only
};

struct ApplyResult {
  int64_t version = 0;            // the version now active (unchanged on a dry run or no-op)
  std::vector<std::string> diff;  // field by field, against the running config
  std::vector<std::string> notes; // e.g. settings that take effect on restart
};

class Engine {
 public:
  // Validates `config`, applies defaults, opens the store, starts
  // simulators, health checks and the listener, and records the config as a
  // version when it differs from the stored active one.
  static absl::StatusOr<std::unique_ptr<Engine>> start(v1::Config config, EngineOptions options = {});
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The front listener, e.g. "http://127.0.0.1:8080", and its bound port.
  std::string url() const;
  uint16_t port() const;
  // The metrics listener (server.metrics_listen), "" / 0 without one.
  std::string metricsUrl() const;
  uint16_t metricsPort() const;
  // The effective config (defaults applied) and its version in the store.
  v1::Config config() const;
  int64_t configVersion() const;

  // Config lifecycle. Errors: InvalidArgument (every validation error, one
  // per line), FailedPrecondition (base_version is stale), NotFound
  // (rollback to an unknown version), Unavailable (a new listen address
  // cannot be bound; nothing changed).
  std::vector<config::ConfigError> validateConfig(const v1::Config& proposed) const;
  absl::StatusOr<ApplyResult> applyConfig(v1::Config proposed, const ChangeRequest& change);
  absl::StatusOr<ApplyResult> rollback(int64_t version, const ChangeRequest& change);
  std::vector<store::ConfigVersion> configHistory(size_t limit = 100) const;
  std::vector<store::AuditEvent> audit(const store::AuditFilter& filter = {}) const;
  // Records an operator action (callers that act on the engine from outside,
  // e.g. an RPC refused for lack of rights).
  void recordAudit(const std::string& actor, const std::string& action, const std::string& target,
                   const std::string& detail, const std::string& outcome);

  // Backend drain: no new requests, in-flight ones finish. NotFound for an
  // unknown backend. Audited.
  absl::Status setBackendDrained(const std::string& backend, bool drained, const std::string& actor);
  // Ejection: out of rotation for `duration`, then back with a slow start
  // (upstream.slow_start_ms). A zero duration readmits now. Audited.
  absl::Status ejectBackend(const std::string& backend, std::chrono::milliseconds duration,
                            const std::string& actor);
  // Operator weight override (0..10000; nullopt clears it). It lasts until
  // cleared or until a config change replaces the backend. Audited.
  absl::Status setBackendWeight(const std::string& backend, std::optional<uint32_t> weight,
                                const std::string& actor);

  // Admission: queues, degradation levels, rate-limit scopes.
  AdmissionStatus admission() const;
  // Pins a pool's degradation level (0..3), or releases the pin (-1).
  // NotFound for an unknown model, InvalidArgument for a bad level. Audited.
  absl::Status pinDegradation(const std::string& model, int level, const std::string& actor);
  // The response cache: statistics, where a request's answer is (the
  // `body` of a chat completion, or of a completion when `completions`),
  // and purges ("" matches any model / tenant; both "": flush). Purges are
  // audited. InvalidArgument for a body that is not a JSON object or names
  // no served model.
  CacheStatus cache() const;
  absl::StatusOr<CacheLookupResult> cacheLookup(const std::string& body, const std::string& tenant,
                                                bool completions = false) const;
  absl::StatusOr<uint64_t> purgeCache(const std::string& model, const std::string& tenant, const std::string& actor);
  // From now on /readyz answers 503 "draining" (load balancers stop
  // sending here); requests are still accepted and served. Irreversible.
  void markDraining();
  // The access log's file is closed and opened again (SIGUSR1, after
  // logrotate moved it).
  void reopenLogs();
  // Waits until every access log line of the requests finished so far is
  // written (tests; the drain does it too).
  void flushAccessLog();
  // Access log lines written and dropped (its queue full), since start.
  std::pair<uint64_t, uint64_t> accessLogCounts() const;
  // Graceful drain of the whole engine: markDraining(), stop accepting,
  // close idle connections, wait up to `timeout` for requests in flight.
  bool drain(std::chrono::milliseconds timeout);
  // Stops everything now: every client connection closes at once (a
  // request still in flight is cut; after drain() only what the drain did
  // not finish), even while the Engine object lives on. Idempotent.
  void stop();

  // The gateway's own limits (server.overload): connections, requests and
  // memory in use against them, and what they turned away.
  GatewayOverloadStatus overload() const;
  // HTTPS at the front door: the certificate in use, reloads, handshakes
  // that failed.
  FrontTlsStatus frontTls() const;

  // The replicas this one shares backends, limits and its config with
  // (fleet/registry.h); nullopt without a fleet (no fleet.redis_address).
  std::optional<fleet::Registry::Status> fleet() const;
  // The control plane's address, advertised in the fleet registry (the
  // daemon sets it once its control plane listens).
  void setControlAddress(const std::string& address);

  std::string metricsText() const;
  // The registry /metrics renders: parts outside the engine that act on it
  // (the config file reloader) register their families here.
  metrics::Registry& metricsRegistry();
  // GPUs, their MIG instances with the backends, classes and load on them,
  // and the launched workers (gpu/gpu_status.h).
  gpu::GpuStatus gpus() const;
  // The inventory as last read (the planner plans for its GPUs by default).
  std::shared_ptr<const gpu::Inventory> gpuInventory() const;
  EngineTotals totals() const;
  // Totals from one to two seconds ago (the sampler's older tick; totals()
  // before the first ticks): a baseline that gives an interval at once.
  EngineTotals recentTotals() const;
  // Recorded history of a series ("requests_per_second", "error_rate",
  // "latency_p50_seconds", "latency_p99_seconds", "ttft_p95_seconds", "in_flight") in [from_ms, to_ms].
  std::vector<store::MetricPoint> history(const std::string& series, int64_t from_ms, int64_t to_ms) const;
  // Usage per tenant × model in a range, from the history the sampler
  // writes once a second (with record_history; the current second not yet).
  std::vector<store::UsageRow> usage(const store::UsageFilter& filter) const;
  // The last requests refused, failed or answered degraded, newest first.
  std::vector<observe::RequestEvent> requestEvents(size_t limit) const;
  int64_t uptimeMs() const;
  std::vector<BackendStatus> backends() const;
  std::vector<PoolStatus> pools() const;
  // Automatic ejections and back-offs, oldest first (the newest 256).
  std::vector<BackendEventInfo> backendEvents() const;
  // Requests retried on another backend since start.
  uint64_t retriesTotal() const;
  // Metric handles the request path caches (diagnostics and tests: bounded
  // by the live config, however many applies).
  size_t cachedMetricHandles() const;
  // The in-process simulator behind a sim:// backend, or nullptr. Shared:
  // it stays valid after a reload replaces the backend (it just no longer
  // receives traffic).
  std::shared_ptr<sim::SimServer> simulator(const std::string& backend_name) const;

 private:
  Engine();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway
