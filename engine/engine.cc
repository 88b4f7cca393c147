#include "engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <tuple>
#include <map>
#include <thread>
#include <unistd.h>

#include "admission/admission_gauges.h"
#include "admission/degradation.h"
#include "admission/tick.h"
#include "cache/response_cache.h"
#include "common/clock.h"
#include "common/io_pool.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "common/url.h"
#include "config/config_error.h"
#include "config/diff.h"
#include "config/validate.h"
#include "fleet/registry.h"
#include "gpu/gpu_manager.h"
#include "gpu/placement.h"
#include "http/front_server.h"
#include "http/gateway.h"
#include "http/tls_context.h"
#include "metrics/registry.h"
#include "observe/recorders.h"
#include "pipeline/pool_gauges.h"
#include "routing/route_builder.h"
#include "sim/sim_server.h"
#include "upstream/backend_gauges.h"
#include "upstream/health_checker.h"
#include "upstream/load_scraper.h"

namespace spillway {

using common::wallClockMs;

namespace {

// What the GPU view needs of each backend bound to a GPU: load, limit, the
// classes placed on it, and the requests waiting that may go there.
std::vector<gpu::BoundBackend> gpuBackendView(const pipeline::RouteTable& routes) {
  std::vector<gpu::BoundBackend> out;
  if (std::none_of(routes.backends.begin(), routes.backends.end(),
                   [](const auto& b) { return !b->config().gpu().empty(); })) {
    return out;
  }
  std::map<uint64_t, std::array<uint64_t, admission::kPriorities>> depths;  // by pool id, read once
  for (const auto& [model, pool] : routes.pools) {
    if (pool.queue) depths[pool.id] = pool.queue->depths();
  }
  for (const auto& b : routes.backends) {
    if (b->config().gpu().empty()) continue;
    gpu::BoundBackend v;
    v.name = b->name();
    v.gpu = b->config().gpu();
    v.in_flight = b->inFlight();
    v.capacity = b->concurrencyLimit();
    if (routes.placement) v.classes = routes.placement->classesOf(*b);
    for (const auto& [model, pool] : routes.pools) {
      if (!pool.queue || !pool.uses(*b)) continue;
      const auto& depth = depths.at(pool.id);
      for (int c = 0; c < admission::kPriorities; ++c) {
        const auto allowed = routes.placement ? routes.placement->allowed(pool.id, static_cast<admission::Priority>(c), false)
                                              : std::span<const upstream::Backend* const>{};
        if (allowed.empty() || std::find(allowed.begin(), allowed.end(), b.get()) != allowed.end()) {
          v.queued += static_cast<int64_t>(depth[c]);
        }
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

struct Engine::Impl {
  // Declaration order is destruction order in reverse: listeners and the
  // checker go first, worker threads before the simulators they talk to.
  // Serializes changes: applies, drains, start and stop. Guards the config,
  // its version, the id counter and the simulators (annotated below); the
  // parts up to `front` are replaced only under it.
  mutable common::Mutex mu;
  v1::Config config ABSL_GUARDED_BY(mu);  // effective (defaults applied)
  int64_t version ABSL_GUARDED_BY(mu) = 0;
  uint64_t next_id ABSL_GUARDED_BY(mu) = 1;  // backend and pool ids, never reused
  metrics::Registry registry;
  // Automatic ejections and back-offs, for the console (kept across applies).
  std::shared_ptr<upstream::BackendEvents> events = std::make_shared<upstream::BackendEvents>();
  // Which backend stores each Responses API response (kept across applies).
  std::shared_ptr<responses::ResponseOwners> response_owners = std::make_shared<responses::ResponseOwners>(registry);
  // The access log's writer (its thread and file; kept across applies).
  std::shared_ptr<observe::AccessLog> access_log = std::make_shared<observe::AccessLog>(registry);
  // Usage per tenant × model since the sampler's last tick, and the
  // requests that went wrong (both kept across applies).
  std::shared_ptr<observe::UsageLedger> usage = std::make_shared<observe::UsageLedger>();
  std::shared_ptr<observe::RequestEvents> request_events = std::make_shared<observe::RequestEvents>();
  // How many replicas share the backends and the limits (1 alone), and the
  // registry that counts them and carries fleet configs (null: no fleet).
  std::shared_ptr<upstream::FleetShare> fleet_share = std::make_shared<upstream::FleetShare>();
  std::unique_ptr<fleet::Registry> fleet;
  std::optional<fleet::Published> fleet_start;  // the fleet config this replica started on
  std::string control_address ABSL_GUARDED_BY(mu);  // advertised in the registry
  std::unique_ptr<store::Store> store;
  // The response cache: one for the engine's life, shared by every routing
  // table (its tiers open at start; entries survive applies).
  std::shared_ptr<cache::ResponseCache> cache;
  // GPUs: the inventory, placement's view of it, and the workers launched
  // per instance (stopped with the engine).
  std::unique_ptr<gpu::GpuManager> gpu;
  std::unique_ptr<common::IoPool> sim_io;  // created with the first sim:// backend
  std::map<uint64_t, std::shared_ptr<sim::SimServer>> sims ABSL_GUARDED_BY(mu);  // by backend id, current backends only
  std::unique_ptr<common::IoPool> io;
  std::unique_ptr<http::Gateway> gateway;
  // Each module's gauges over the gateway's current routing table (read at
  // each scrape, so they follow config applies); gone before the gateway.
  std::vector<metrics::Registry::Registration> module_gauges;
  std::unique_ptr<upstream::HealthChecker> health;
  std::unique_ptr<upstream::LoadScraper> load_scraper;
  std::vector<std::unique_ptr<http::FrontServer>> retired_fronts;  // old listeners, draining
  std::vector<std::thread> drainers;
  std::unique_ptr<http::FrontServer> front;
  // The listener now, for metric callbacks and status without taking mu
  // (listeners a config apply retired stay alive in retired_fronts).
  std::atomic<http::FrontServer*> front_now{nullptr};
  // The metrics listener (server.metrics_listen), when there is one.
  std::unique_ptr<http::FrontServer> metrics_front;
  std::function<uint64_t()> memory_gauge;  // EngineOptions::memory_gauge
  bool stopped = false;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // The totals at the last two sampler ticks (oldest first), for views that
  // need an interval right away (recentTotals()).
  mutable common::Mutex ticks_mu;
  std::deque<EngineTotals> ticks ABSL_GUARDED_BY(ticks_mu);
  // The history sampler: one thread, one point per second per series.
  std::thread sampler;
  common::Mutex sampler_mu;
  common::CondVar sampler_cv;
  bool sampler_stop ABSL_GUARDED_BY(sampler_mu) = false;

  // Start-up steps, in the order Engine::start runs them (with mu held).
  absl::Status openStore(const std::string& data_dir);
  // With a fleet: the registry, and the fleet's config instead of the
  // file's when one is published (true then).
  bool joinFleet() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void startFleet(Engine* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // After a change on this replica: published for the others (or why not).
  void publishToFleet(const ChangeRequest& change, const std::string& action, ApplyResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void openCache(const EngineOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void startGpus(const EngineOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::Status startServing(const std::shared_ptr<pipeline::RouteTable>& routes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::Status recordStartupVersion(const std::string& actor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void registerModuleGauges();
  void startSampler(Engine* self, bool record);

  void audit(const std::string& actor, const std::string& action, const std::string& target,
             const std::string& detail, const std::string& outcome) {
    if (!store) return;
    if (auto st = store->appendAudit({0, wallClockMs(), actor, action, target, detail, outcome}); !st.ok()) {
      spdlog::error("audit log write failed: {}", std::string(st.message()));
    }
  }

  // A routing table for `cfg`. Backends whose config did not change are
  // reused (with their health, drain state and connection pools); new or
  // changed sim:// backends get a new in-process simulator.
  absl::StatusOr<std::shared_ptr<pipeline::RouteTable>> buildRoutes(const v1::Config& cfg, const pipeline::RouteTable* old,
                                                                std::map<uint64_t, std::shared_ptr<sim::SimServer>>& new_sims)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::vector<upstream::BackendPtr> backends;  // config order
    for (const auto& b : cfg.backends()) {
      upstream::BackendPtr backend;
      if (old) {
        const std::string wanted = b.SerializeAsString();
        for (const auto& ob : old->backends) {
          if (ob->name() == b.name() && ob->config().SerializeAsString() == wanted) backend = ob;
        }
      }
      if (backend) {
        if (auto it = sims.find(backend->id()); it != sims.end()) new_sims[backend->id()] = it->second;
      } else {
        auto url = common::parseUrl(b.url());
        if (!url.ok()) return url.status();
        std::shared_ptr<sim::SimServer> sim;
        if (url->scheme == "sim") {
          // Simulated backends run in-process on their own threads, behind
          // real loopback sockets, so requests take exactly the real path.
          if (!sim_io) {
            sim_io = std::make_unique<common::IoPool>(std::min(2u, std::max(1u, std::thread::hardware_concurrency())));
            sim_io->start();
          }
          std::vector<std::string> models(b.models().begin(), b.models().end());
          sim = std::make_shared<sim::SimServer>(*sim_io, b.sim(), models, b.name());
          if (auto st = sim->listen("127.0.0.1", 0); !st.ok()) return st;
          url = common::parseUrl(common::strCat("http://127.0.0.1:", sim->port()));
        }
        backend = std::make_shared<upstream::Backend>(next_id++, b, *url, config::resolveApiKey(b));
        backend->shareWith(fleet_share);
        if (sim) {
          backend->holdAlive(sim);
          new_sims[backend->id()] = sim;
        }
      }
      backends.push_back(std::move(backend));
    }
    return routing::buildRouteTable(
        cfg,
        {std::move(backends), old, cache, gpu->inventory(), &registry, events, response_owners,
         {access_log, usage, request_events}, fleet_share},
        next_id);
  }

  // Each backend's own TLS context (verification on or off), for probes.
  upstream::HealthChecker::TlsFor tlsFor() const {
    http::Gateway* g = gateway.get();
    return [g](const upstream::Backend& b) { return g->tlsFor(b); };
  }

  absl::StatusOr<ApplyResult> applyLocked(v1::Config proposed, const ChangeRequest& change, const std::string& action) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Health checks and load scraping for a new routing table's backends (the
  // old checker and scraper stop as they are replaced).
  void watchBackends(const pipeline::RouteTable& routes, const v1::LoadMetrics& load_metrics) {
    auto checker = std::make_unique<upstream::HealthChecker>(io->context(0), routes.backends, tlsFor());
    checker->start();
    health = std::move(checker);
    auto scraper = std::make_unique<upstream::LoadScraper>(io->context(0), routes.backends, load_metrics, tlsFor());
    scraper->start();
    load_scraper = std::move(scraper);
  }

  // Workers out of the routing table (`old` was the last to route to them):
  // stopped on a drainer thread once nothing is in flight on their backends
  // there, or after `timeout`.
  void retireLater(pipeline::RouteTablePtr old, std::vector<std::string> names, std::chrono::milliseconds timeout) {
    if (names.empty()) return;
    drainers.emplace_back([g = gpu.get(), old = std::move(old), names = std::move(names), timeout] {
      const auto until = std::chrono::steady_clock::now() + timeout;
      auto busy = [&] {
        for (const auto& b : old->backends) {
          if (b->inFlight() > 0 && std::find(names.begin(), names.end(), b->name()) != names.end()) return true;
        }
        return false;
      };
      // Requests end on their own: check a few times a second.
      while (busy() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      g->retire(names);
    });
  }

  // The GPUs changed under a running config (an operator created or
  // destroyed MIG instances): workers and routes follow, no new version.
  void gpusChanged() {
    common::MutexLock lock(mu);
    if (stopped) return;
    auto retiring = gpu->configure(config, /*drain_removed=*/true);
    auto old_routes = gateway->routes();
    std::map<uint64_t, std::shared_ptr<sim::SimServer>> new_sims;
    auto routes = buildRoutes(gpu::withWorkerBackends(config, gpu->workerBackends()), old_routes.get(), new_sims);
    if (!routes.ok()) {
      spdlog::error("gpu inventory changed; routes not rebuilt: {}", std::string(routes.status().message()));
      return;
    }
    gateway->setRoutes(*routes);
    watchBackends(**routes, config.upstream().load_metrics());
    sims = std::move(new_sims);
    const size_t n = retiring.size();
    retireLater(old_routes, std::move(retiring), std::chrono::milliseconds(config.server().drain_timeout_ms()));
    audit("gpu", "gpu.inventory_changed", "", common::strCat(gpu->workerBackends().size(), " workers, ", n, " retiring"),
          "ok");
    spdlog::info("gpu inventory changed: {} workers, {} retiring", gpu->workerBackends().size(), n);
  }
  absl::Status changeBackend(const std::string& backend, const std::string& actor, const std::string& action,
                             const std::string& detail, const std::function<void(upstream::Backend&)>& change);
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}

Engine::~Engine() { stop(); }

// --- start-up, step by step (Engine::start reads as the list) ---------------

// The store: SQLite in the data directory, or in memory without one.
absl::Status Engine::Impl::openStore(const std::string& data_dir) {
  std::string db = ":memory:";
  if (!data_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) return absl::UnavailableError(common::strCat("cannot create ", data_dir, ": ", ec.message()));
    db = (std::filesystem::path(data_dir) / "spillway.db").string();
  }
  auto opened = store::Store::open(db);
  if (!opened.ok()) return opened.status();
  store = std::move(*opened);
  return absl::OkStatus();
}

// The response cache with its tiers (the disk tier in the data directory
// unless cache.disk.path says otherwise).
void Engine::Impl::openCache(const EngineOptions& options) {
  std::string disk = config.cache().disk().path();
  if (disk.empty() && !options.data_dir.empty()) disk = (std::filesystem::path(options.data_dir) / "cache.db").string();
  if (disk.empty() && !config.cache().disk().disabled()) {
    spdlog::info("cache: no disk tier (no data directory; set cache.disk.path to keep answers across restarts)");
  }
  cache = std::make_shared<cache::ResponseCache>(config.cache(), disk, registry, options.cache_clock_ms);
}

// The GPU inventory and the workers the config launches.
void Engine::Impl::startGpus(const EngineOptions& options) {
  gpu::GpuManager::Options go;
  go.spillwayd_path = options.spillwayd_path;
  if (!options.data_dir.empty()) go.log_dir = (std::filesystem::path(options.data_dir) / "workers").string();
  if (!options.nvml_library.empty()) go.nvml_library = options.nvml_library;
  gpu = std::make_unique<gpu::GpuManager>(registry, go);
  gpu->configure(config);
}

// Worker threads, the gateway over `routes`, the listener, health checks,
// load scraping, and the GPU manager's view of the routes.
absl::Status Engine::Impl::startServing(const std::shared_ptr<pipeline::RouteTable>& routes) {
  io = std::make_unique<common::IoPool>(config.server().threads());
  gateway = std::make_unique<http::Gateway>(routes, io->size(), registry);
  registerModuleGauges();
  front = std::make_unique<http::FrontServer>(*io, *gateway, config.server());
  if (memory_gauge) front->setMemoryGauge(memory_gauge);
  if (auto st = front->start(); !st.ok()) return st;
  front_now = front.get();
  if (!config.server().metrics_listen().empty()) {
    metrics_front = std::make_unique<http::FrontServer>(*io, *gateway, config.server(), http::FrontServer::Role::kMetrics);
    if (auto st = metrics_front->start(); !st.ok()) return st;
  }
  io->start();
  health = std::make_unique<upstream::HealthChecker>(io->context(0), routes->backends, tlsFor());
  health->start();
  load_scraper = std::make_unique<upstream::LoadScraper>(io->context(0), routes->backends,
                                                         config.upstream().load_metrics(), tlsFor());
  load_scraper->start();
  gpu->setBackendView([gw = gateway.get()] { return gpuBackendView(*gw->routes()); });
  gpu->setInventoryListener([this] { gpusChanged(); });
  return absl::OkStatus();
}

void Engine::Impl::registerModuleGauges() {
  const http::Gateway* gw = gateway.get();
  auto keep = [this](std::vector<metrics::Registry::Registration> regs) {
    for (auto& r : regs) module_gauges.push_back(std::move(r));
  };
  keep(upstream::registerBackendGauges(registry, [gw] {
    pipeline::RouteTablePtr table = gw->routes();
    return std::shared_ptr<const std::vector<upstream::BackendPtr>>(table, &table->backends);
  }));
  keep(pipeline::registerPoolGauges(registry, [gw] { return gw->routes(); }));
  keep(admission::registerAdmissionGauges(registry, [gw] { return gw->routes(); }));
  // The gateway's own limits (server.overload), from the listener now.
  auto* front_now_ptr = &front_now;
  auto stats = [front_now_ptr] {
    http::FrontServer* f = front_now_ptr->load();
    return f ? f->overloadStats() : http::FrontServer::OverloadStats{};
  };
  using Samples = std::vector<std::pair<metrics::Labels, double>>;
  module_gauges.push_back(registry.scopedCallbackGauge(
      "spillway_overload_connections", "Client connections open now (server.overload.max_connections bounds them).",
      {}, [stats] { return Samples{{{}, static_cast<double>(stats().open_connections)}}; }));
  module_gauges.push_back(registry.scopedCallbackGauge(
      "spillway_overload_active_requests",
      "Requests past their headers and not yet answered (server.overload.max_active_requests bounds them).", {},
      [stats] { return Samples{{{}, static_cast<double>(stats().active_requests)}}; }));
  module_gauges.push_back(registry.scopedCallbackGauge(
      "spillway_overload_memory_bytes",
      "The process's memory at the last check against server.overload.memory_budget_bytes (0 without a budget).",
      {}, [stats] { return Samples{{{}, static_cast<double>(stats().memory_bytes)}}; }));
  module_gauges.push_back(registry.scopedCallbackGauge(
      "spillway_overload_keep_alive_off",
      "1 while a gateway limit is near (90 % of connections or memory) and answers close their connections.", {},
      [stats] { return Samples{{{}, stats().keep_alive_off ? 1.0 : 0.0}}; }));
  module_gauges.push_back(registry.scopedCallbackCounter(
      "spillway_overload_refused_total",
      "Connections and requests the gateway's own limits turned away with 503 gateway_overloaded, by limit.",
      {"limit"}, [stats] {
        const auto s = stats();
        return Samples{{{"max_connections"}, static_cast<double>(s.refused_connections)},
                       {{"max_connections_per_client"}, static_cast<double>(s.refused_per_client)},
                       {{"max_active_requests"}, static_cast<double>(s.refused_requests)},
                       {{"memory_budget_bytes"}, static_cast<double>(s.refused_memory)}};
      }));
  // HTTPS at the front door (server.tls).
  auto tls = [front_now_ptr] {
    http::FrontServer* f = front_now_ptr->load();
    return f ? f->tlsStats() : http::FrontServer::TlsStats{};
  };
  module_gauges.push_back(registry.scopedCallbackGauge(
      "spillway_tls_certificate_expiry_timestamp_seconds",
      "When the front listener's certificate expires (Unix time); absent without server.tls.", {}, [tls] {
        const auto s = tls();
        return s.enabled ? Samples{{{}, static_cast<double>(s.not_after_unix)}} : Samples{};
      }));
  module_gauges.push_back(registry.scopedCallbackCounter(
      "spillway_tls_handshake_failures_total",
      "Client connections whose TLS handshake failed (old protocol versions, no shared cipher, a client "
      "certificate refused, plain HTTP sent to the HTTPS port, timeouts).",
      {}, [tls] { return Samples{{{}, static_cast<double>(tls().handshake_failures)}}; }));
  module_gauges.push_back(registry.scopedCallbackCounter(
      "spillway_tls_certificate_reloads_total",
      "Front certificates read again after a change of file or config, by outcome (a failed one keeps the "
      "certificate in use).",
      {"outcome"}, [tls] {
        const auto s = tls();
        return Samples{{{"ok"}, static_cast<double>(s.reloads)}, {{"failed"}, static_cast<double>(s.reload_failures)}};
      }));
}

// The config we start with is the running version: reuse the stored
// active version when identical, else record it as a new one.
bool Engine::Impl::joinFleet() {
  if (!fleet::enabled(config)) return false;
  const std::string& address = config.fleet().redis_address();
  const auto settings = fleet::Registry::fromConfig(config, "");
  spdlog::info("fleet: registering at {} (config from {})", address,
               settings.follow_config ? "the fleet, through Redis" : "this replica's file");
  if (!settings.follow_config) return false;
  auto published = fleet::Registry::fetch(settings);
  if (!published) return false;
  v1::Config merged = published->config;
  fleet::keepLocalSections(config, merged);
  if (auto errors = config::validate(merged); !errors.empty()) {
    spdlog::error("fleet: fleet config v{} cannot run here; starting on the file's config instead:\n{}",
                  published->version, config::formatErrors(errors));
    return false;
  }
  config::applyDefaults(merged);
  config = std::move(merged);
  spdlog::info("fleet: starting on fleet config v{} (applied by {} on {})", published->version, published->actor,
               published->origin);
  fleet_start = std::move(published);
  return true;
}

void Engine::Impl::startFleet(Engine* self) {
  if (!fleet::enabled(config)) return;
  // The default name: the pod's, else this host and the port it serves on.
  char host_buf[256] = {};
  gethostname(host_buf, sizeof host_buf - 1);
  const std::string host = host_buf;
  const char* pod = std::getenv("POD_NAME");
  const std::string id = pod && *pod ? std::string(pod) : common::strCat(host, ":", front->port());
  fleet = std::make_unique<fleet::Registry>(fleet::Registry::fromConfig(config, id), fleet_share, registry);
  if (fleet_start) fleet->adopt(*fleet_start);
  fleet::Registry::Hooks hooks;
  hooks.describe = [this, self, host] {
    fleet::Replica r;  // the registry fills in the fleet version it holds
    r.url = self->url();
    r.host = host;
    {
      common::MutexLock lock(mu);
      r.config_version = version;
      r.control = control_address;
    }
    r.started_ms = wallClockMs() - self->uptimeMs();
    auto routes = gateway->routes();
    r.limits_redis_up = !(routes->limiter && routes->limiter->redis()) || routes->limiter->redis()->up();
    return r;
  };
  hooks.follow = [this](const fleet::Published& p) -> absl::Status {
    v1::Config merged = p.config;
    common::MutexLock lock(mu);
    fleet::keepLocalSections(config, merged);
    ChangeRequest change;
    change.actor = common::strCat("fleet:", p.actor);
    change.comment = common::strCat("fleet config v", p.version, " from ", p.origin, p.comment.empty() ? "" : ": ",
                                    p.comment);
    auto r = applyLocked(std::move(merged), change, "config.fleet");
    return r.ok() ? absl::OkStatus() : r.status();
  };
  fleet->start(std::move(hooks));
}

void Engine::Impl::publishToFleet(const ChangeRequest& change, const std::string& action, ApplyResult& result) {
  if (!fleet || action == "config.fleet" || change.dry_run) return;
  if (!fleet->settings().follow_config) {
    if (change.actor != "file") {
      result.notes.push_back(
          "fleet.config_source is file: this change runs on this replica only, and its config file wins at the next "
          "reload; change the file (the ConfigMap) to change the fleet");
    }
    return;
  }
  auto v = fleet->publish(config, change.actor, change.comment);
  if (v.ok()) {
    result.notes.push_back(common::strCat("published as fleet config v", *v, ": every replica follows within ",
                                          config.fleet().heartbeat_ms(), " ms"));
  } else {
    result.notes.push_back(common::strCat("runs on this replica only: ", v.status().message()));
  }
}

absl::Status Engine::Impl::recordStartupVersion(const std::string& actor) {
  const std::string serialized = config.SerializeAsString();
  auto active = store->activeVersion();
  if (active && active->config == serialized) {
    version = active->id;
    return absl::OkStatus();
  }
  v1::Config previous;
  std::string diff = active && previous.ParseFromString(active->config) ? config::diffText(previous, config)
                                                                        : "initial version";
  auto id = store->addConfigVersion({0, wallClockMs(), actor, "config at start-up", diff, serialized,
                                     active ? active->id : 0, true});
  if (!id.ok()) return id.status();
  version = *id;
  audit(actor, "config.startup", common::strCat("v", version), "", "ok");
  return absl::OkStatus();
}

// Once a second: end due ejections and advance slow starts, admission's
// tick, the totals for live views, and (when `record`) a history point per
// series.
void Engine::Impl::startSampler(Engine* self, bool record) {
  sampler = std::thread([this, self, record] {
    EngineTotals prev = self->totals();
    common::MutexLock lock(sampler_mu);
    while (!sampler_cv.wait_for(lock, std::chrono::seconds(1), [&] {
      sampler_mu.assertHeld();
      return sampler_stop;
    })) {
      const int64_t now_ms = wallClockMs();
      auto routes = gateway->routes();
      for (const auto& b : routes->backends) b->tick(now_ms);
      admission::tick(*routes, std::chrono::steady_clock::now(), now_ms);
      EngineTotals now = self->totals();
      {
        common::MutexLock ticks_lock(ticks_mu);
        ticks.push_back(now);
        while (ticks.size() > 2) ticks.pop_front();
      }
      auto used = usage->take();
      if (!record) continue;
      if (auto st = store->appendUsage(now.ts_ms, used); !st.ok()) spdlog::warn("usage history: {}", std::string(st.message()));
      IntervalStats s = intervalStats(prev, now);
      prev = now;
      auto st = store->appendMetrics(now.ts_ms, {{"requests_per_second", s.requests_per_second},
                                                 {"error_rate", s.error_rate},
                                                 {"latency_p50_seconds", s.latency_p50_seconds},
                                                 {"latency_p99_seconds", s.latency_p99_seconds},
                                                 {"ttft_p95_seconds", s.ttft_p95_seconds},
                                                 {"in_flight", static_cast<double>(now.in_flight)}});
      if (!st.ok()) spdlog::warn("metrics history: {}", std::string(st.message()));
    }
  });
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::start(v1::Config config, EngineOptions options) {
  auto errors = config::validate(config);
  if (!errors.empty()) return absl::InvalidArgumentError(config::formatErrors(errors));
  config::applyDefaults(config);

  std::unique_ptr<Engine> engine(new Engine());
  Impl& d = *engine->impl_;
  common::MutexLock lock(d.mu);
  d.config = config;
  if (auto st = d.openStore(options.data_dir); !st.ok()) return st;
  std::string actor = options.actor;
  if (d.joinFleet()) actor = "fleet";
  d.memory_gauge = options.memory_gauge;
  d.openCache(options);
  d.startGpus(options);
  auto routes = d.buildRoutes(gpu::withWorkerBackends(d.config, d.gpu->workerBackends()), nullptr, d.sims);
  if (!routes.ok()) return routes.status();
  if (auto st = d.startServing(*routes); !st.ok()) return st;
  if (auto st = d.recordStartupVersion(actor); !st.ok()) return st;
  d.startSampler(engine.get(), options.record_history);
  d.startFleet(engine.get());
  spdlog::info("spillway engine listening on {} ({} worker threads, {} backends, {} models, config v{})",
               d.front->url(), d.io->size(), (*routes)->backends.size(), (*routes)->pools.size(), d.version);
  if (const auto tls = d.front->tlsStats(); tls.enabled) {
    spdlog::info("front TLS: certificate {}, expires in {} days{}", tls.subject,
                 (tls.not_after_unix - wallClockMs() / 1000) / 86400,
                 tls.client_certificates_required ? ", client certificates required"
                 : tls.client_certificates        ? ", client certificates accepted"
                                                  : "");
  } else if (auto hp = common::parseHostPort(d.config.server().listen());
             hp.ok() && !common::isLoopbackHost(hp->host)) {
    spdlog::warn("front listener {} serves plain HTTP to other machines (server.allow_plaintext): API keys cross the "
                 "network in clear text unless a proxy in front terminates TLS",
                 d.config.server().listen());
  }
  return engine;
}

absl::StatusOr<ApplyResult> Engine::Impl::applyLocked(v1::Config proposed, const ChangeRequest& change,
                                                      const std::string& action) {
  if (stopped) return absl::FailedPreconditionError("the engine is stopped");
  auto errors = config::validate(proposed);
  if (!errors.empty()) {
    audit(change.actor, action, "", change.comment, "failed: invalid config");
    return absl::InvalidArgumentError(config::formatErrors(errors));
  }
  config::applyDefaults(proposed);
  if (change.base_version >= 0 && change.base_version != version) {
    audit(change.actor, action, "", change.comment,
          common::strCat("failed: based on v", change.base_version, ", running v", version));
    return absl::FailedPreconditionError(common::strCat("the config changed since version ", change.base_version,
                                                        " (now version ", version,
                                                        "); review the new version and try again"));
  }
  ApplyResult result;
  result.version = version;
  result.diff = config::diffMessages(config, proposed);
  if (proposed.server().threads() != config.server().threads()) {
    result.notes.push_back("server.threads takes effect on restart");
  }
  if (proposed.control().SerializeAsString() != config.control().SerializeAsString()) {
    result.notes.push_back("control.* takes effect on restart");
  }
  if (proposed.cache().disk().SerializeAsString() != config.cache().disk().SerializeAsString() ||
      proposed.cache().redis().SerializeAsString() != config.cache().redis().SerializeAsString() ||
      proposed.cache().bloom().SerializeAsString() != config.cache().bloom().SerializeAsString()) {
    result.notes.push_back("cache.disk, cache.redis and cache.bloom take effect on restart");
  }
  if (change.dry_run || result.diff.empty()) return result;

  // Everything that can fail comes before the swap, so a failed apply
  // changes nothing.
  auto old_routes = gateway->routes();
  // Workers start (or stop) here, before the new table routes to them; an
  // apply that fails after this puts the running config's workers back.
  // Workers the new config drops keep running until their requests are done.
  const bool gpu_changed = proposed.gpu().SerializeAsString() != config.gpu().SerializeAsString();
  std::vector<std::string> retiring;
  if (gpu_changed) retiring = gpu->configure(proposed, /*drain_removed=*/true);
  auto restoreWorkers = [&] {
    mu.assertHeld();  // called on this apply's failure paths, under its lock
    if (gpu_changed) gpu->configure(config);
  };
  std::map<uint64_t, std::shared_ptr<sim::SimServer>> new_sims;
  auto routes = buildRoutes(gpu::withWorkerBackends(proposed, gpu->workerBackends()), old_routes.get(), new_sims);
  if (!routes.ok()) {
    restoreWorkers();
    return routes.status();
  }
  // A certificate that cannot be used refuses the apply (the listener
  // would otherwise keep the old one and only log it).
  if (const auto& tls = proposed.server().tls(); !tls.cert_file().empty()) {
    if (auto made = http::makeFrontTlsContext(tls); !made.ok()) {
      audit(change.actor, action, "", change.comment, common::strCat("failed: ", made.status().message()));
      restoreWorkers();
      return made.status();
    }
  }
  std::unique_ptr<http::FrontServer> new_front, new_metrics_front;
  if (proposed.server().listen() != config.server().listen()) {
    new_front = std::make_unique<http::FrontServer>(*io, *gateway, proposed.server());
    if (memory_gauge) new_front->setMemoryGauge(memory_gauge);
    if (auto st = new_front->start(); !st.ok()) {
      audit(change.actor, action, "", change.comment, common::strCat("failed: ", st.message()));
      restoreWorkers();
      return st;
    }
  }
  const bool metrics_moved = proposed.server().metrics_listen() != config.server().metrics_listen();
  if (metrics_moved && !proposed.server().metrics_listen().empty()) {
    new_metrics_front =
        std::make_unique<http::FrontServer>(*io, *gateway, proposed.server(), http::FrontServer::Role::kMetrics);
    if (auto st = new_metrics_front->start(); !st.ok()) {
      audit(change.actor, action, "", change.comment, common::strCat("failed: ", st.message()));
      restoreWorkers();
      return st;
    }
  }
  auto id = store->addConfigVersion({0, wallClockMs(), change.actor, change.comment, common::join(result.diff, "\n"),
                                     proposed.SerializeAsString(), version, true});
  if (!id.ok()) {
    restoreWorkers();
    return id.status();  // new_front (if any) closes unused
  }

  // The swap: new requests route by the new table; requests in flight
  // finish on the table (and backends) they started with.
  gateway->setRoutes(*routes);
  if (new_front) {
    std::unique_ptr<http::FrontServer> old = std::move(front);
    front = std::move(new_front);
    front_now = front.get();
    http::FrontServer* raw = old.get();
    retired_fronts.push_back(std::move(old));
    const auto timeout = std::chrono::milliseconds(proposed.server().drain_timeout_ms());
    drainers.emplace_back([raw, timeout] { raw->drain(timeout); });  // accepted connections finish
  } else {
    front->setServerConfig(proposed.server());
  }
  if (metrics_moved) {
    if (metrics_front) {
      http::FrontServer* raw = metrics_front.get();
      retired_fronts.push_back(std::move(metrics_front));
      const auto timeout = std::chrono::milliseconds(proposed.server().drain_timeout_ms());
      drainers.emplace_back([raw, timeout] { raw->drain(timeout); });
    }
    metrics_front = std::move(new_metrics_front);
  } else if (metrics_front) {
    metrics_front->setServerConfig(proposed.server());
  }
  retireLater(old_routes, std::move(retiring), std::chrono::milliseconds(proposed.server().drain_timeout_ms()));
  watchBackends(**routes, proposed.upstream().load_metrics());
  sims = std::move(new_sims);
  config = std::move(proposed);
  version = *id;
  result.version = version;
  audit(change.actor, action, common::strCat("v", version), change.comment, "ok");
  spdlog::info("config v{} applied by {} ({} changes)", version, change.actor, result.diff.size());
  publishToFleet(change, action, result);
  return result;
}

std::vector<config::ConfigError> Engine::validateConfig(const v1::Config& proposed) const {
  return config::validate(proposed);
}

absl::StatusOr<ApplyResult> Engine::applyConfig(v1::Config proposed, const ChangeRequest& change) {
  common::MutexLock lock(impl_->mu);
  return impl_->applyLocked(std::move(proposed), change, change.dry_run ? "config.dry_run" : "config.apply");
}

absl::StatusOr<ApplyResult> Engine::rollback(int64_t version, const ChangeRequest& change) {
  common::MutexLock lock(impl_->mu);
  auto v = impl_->store->configVersion(version);
  if (!v.ok()) return v.status();
  v1::Config target;
  if (!target.ParseFromString(v->config)) return absl::DataLossError(common::strCat("config version ", version, " is unreadable"));
  ChangeRequest c = change;
  if (c.comment.empty()) c.comment = common::strCat("rollback to v", version);
  return impl_->applyLocked(std::move(target), c, "config.rollback");
}

std::vector<store::ConfigVersion> Engine::configHistory(size_t limit) const {
  return impl_->store->listConfigVersions(limit);
}

std::vector<store::AuditEvent> Engine::audit(const store::AuditFilter& filter) const {
  return impl_->store->listAudit(filter);
}

void Engine::recordAudit(const std::string& actor, const std::string& action, const std::string& target,
                         const std::string& detail, const std::string& outcome) {
  impl_->audit(actor, action, target, detail, outcome);
}

// Runs `change` on the named backend under the engine's lock and audits
// it; NotFound (also audited) when there is no such backend.
absl::Status Engine::Impl::changeBackend(const std::string& backend, const std::string& actor,
                                         const std::string& action, const std::string& detail,
                                         const std::function<void(upstream::Backend&)>& change) {
  common::MutexLock lock(mu);
  for (const auto& b : gateway->routes()->backends) {
    if (b->name() != backend) continue;
    change(*b);
    audit(actor, action, backend, detail, "ok");
    spdlog::info("{} {} {} by {}", action, backend, detail, actor);
    return absl::OkStatus();
  }
  audit(actor, action, backend, detail, "failed: no such backend");
  return absl::NotFoundError(common::strCat("no backend named \"", backend, "\""));
}

absl::Status Engine::setBackendDrained(const std::string& backend, bool drained, const std::string& actor) {
  return impl_->changeBackend(backend, actor, drained ? "backend.drain" : "backend.undrain", "",
                              [drained](upstream::Backend& b) { b.setDraining(drained); });
}

absl::Status Engine::ejectBackend(const std::string& backend, std::chrono::milliseconds duration,
                                  const std::string& actor) {
  if (duration.count() < 0 || duration > std::chrono::hours(24)) {
    return absl::InvalidArgumentError("an ejection lasts between 0 (readmit now) and 24 hours");
  }
  const int64_t slow_start = config().upstream().slow_start_ms();
  const bool readmit = duration.count() == 0;
  return impl_->changeBackend(
      backend, actor, readmit ? "backend.readmit" : "backend.eject",
      readmit                       ? std::string()
      : duration.count() % 1000 == 0 ? common::strCat("for ", duration.count() / 1000, " s")
                                     : common::strCat("for ", duration.count(), " ms"),
      [&](upstream::Backend& b) {
        const int64_t now = wallClockMs();
        b.eject(now, now + duration.count(), slow_start);
      });
}

absl::Status Engine::setBackendWeight(const std::string& backend, std::optional<uint32_t> weight,
                                      const std::string& actor) {
  if (weight && *weight > 10000) return absl::InvalidArgumentError("weight must be between 0 and 10000");
  return impl_->changeBackend(backend, actor, "backend.weight",
                              weight ? common::strCat("weight ", *weight) : std::string("configured weight"),
                              [&](upstream::Backend& b) { b.setWeightOverride(weight ? static_cast<int32_t>(*weight) : -1); });
}

AdmissionStatus Engine::admission() const {
  AdmissionStatus out;
  if (!impl_->gateway) return out;
  auto routes = impl_->gateway->routes();
  out.enabled = !routes->config.admission().disabled();
  for (const auto& [model, pool] : routes->pools) {
    PoolAdmissionStatus p;
    p.model = model;
    if (pool.queue) {
      auto st = pool.queue->stats();
      p.depth = st.depth;
      for (int r = 1; r < admission::kDropReasons; ++r) {
        if (st.drops[r]) p.shed[std::string(admission::dropReasonName(static_cast<admission::DropReason>(r)))] = st.drops[r];
      }
      p.service_rate = st.service_rate;
      p.oldest_wait_seconds = st.oldest_wait_seconds;
      p.tenants = std::move(st.tenant_counters);
      p.tenant_sheds = std::move(st.tenant_sheds);
      p.admitted = st.admitted;
      p.predicted_wait_seconds = st.predicted_wait;
      p.objective_met = st.objective_met;
      p.objective_total = st.objective_total;
      p.service_seconds = st.service_seconds;
      p.objective_seconds = st.objective_seconds;
    }
    if (pool.degradation) {
      p.level = pool.degradation->level();
      p.pinned = pool.degradation->pinned();
      p.automatic = pool.degradation->automaticLevel();
    }
    out.pools.push_back(std::move(p));
  }
  if (routes->limiter) {
    const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    for (auto& u : routes->limiter->usage(now_ns, 20)) {
      out.limits.push_back({u.scope, u.requests_remaining, u.requests_limit, u.tokens_remaining, u.tokens_limit});
    }
    out.rate_limited = routes->limiter->refused();
    if (const auto* redis = routes->limiter->redis()) {
      out.redis_configured = true;
      out.redis_up = redis->up();
      out.redis_fallbacks = routes->limiter->fallbacks();
    }
  }
  return out;
}

absl::Status Engine::pinDegradation(const std::string& model, int level, const std::string& actor) {
  if (level < -1 || level > admission::kMaxLevel) {
    return absl::InvalidArgumentError("level must be 0 to 3, or -1 to release the pin");
  }
  auto routes = impl_->gateway->routes();
  const pipeline::PoolRoute* pool = routes->find(model);
  if (!pool || !pool->degradation) {
    impl_->audit(actor, "degradation.pin", model, "no such pool", "error");
    return absl::NotFoundError(common::strCat("no pool serves model \"", model, "\""));
  }
  const int before = pool->degradation->level();
  pool->degradation->pin(level);
  const std::string detail = level < 0 ? common::strCat("released (level ", before, " -> automatic ",
                                                        pool->degradation->automaticLevel(), ")")
                                       : common::strCat("pinned at level ", level, " (was ", before, ")");
  spdlog::warn("pool {}: degradation {} by {}", model, detail, actor);
  impl_->audit(actor, "degradation.pin", model, detail, "ok");
  return absl::OkStatus();
}

CacheStatus Engine::cache() const {
  CacheStatus out;
  auto routes = impl_->gateway->routes();
  out.enabled = routes->cache != nullptr;
  out.mode = routes->config.cache().mode();
  out.scope = routes->config.cache().scope();
  const auto st = impl_->cache->stats();
  for (const auto& t : st.tiers) {
    out.tiers.push_back({t.tier, t.enabled, t.entries, t.bytes, t.hits, t.evictions, t.errors, t.skipped, t.detail});
  }
  out.hits = st.hits;
  out.misses = st.misses;
  out.bypasses = st.bypasses;
  out.coalesced = st.coalesced;
  out.stale = st.stale;
  out.stores = st.stores;
  out.bloom_skips = st.bloom_skips;
  out.bloom_fp_estimate = st.bloom_fp_estimate;
  out.bloom_bits = st.bloom_bits;
  out.flights = st.in_flight;
  out.item_hits = st.item_hits;
  out.item_misses = st.item_misses;
  return out;
}

absl::StatusOr<CacheLookupResult> Engine::cacheLookup(const std::string& body, const std::string& tenant,
                                                      bool completions) const {
  auto canonical = cache::canonicalRequest(body);
  if (!canonical) return absl::InvalidArgumentError("the request body is not a JSON object");
  auto routes = impl_->gateway->routes();
  openai::RequestParser parser;
  const auto endpoint = completions ? openai::Endpoint::kCompletions : openai::Endpoint::kChatCompletions;
  auto parsed = parser.parse(endpoint, body, false);
  if (auto* e = std::get_if<openai::ApiError>(&parsed)) return absl::InvalidArgumentError(e->message);
  const std::string& model = std::get<openai::ParsedRequest>(parsed).model;
  if (!routes->find(model)) return absl::InvalidArgumentError(common::strCat("no pool serves model \"", model, "\""));
  const auto settings = impl_->cache->settings();
  const cache::CacheKey key = settings->keyFor(model, endpoint, tenant, canonical->text);
  const std::string scope = settings->per_tenant ? tenant : std::string();
  CacheLookupResult out;
  out.key = key.hex();
  out.cacheable = settings->cachesByDefault(canonical->deterministic);
  cache::Tier tier = cache::Tier::kMemory;
  if (cache::Found f = impl_->cache->findNow(key, model, scope, impl_->cache->nowMs(), &tier)) {
    out.found = true;
    out.stale = f.stale;
    out.tier = std::string(cache::tierName(tier));
    out.bytes = f.entry->body.size();
    out.created_ms = f.entry->created_ms;
    out.expires_ms = f.entry->expires_ms;
    out.form = f.entry->form == cache::Form::kJson ? "json" : f.entry->form == cache::Form::kSse ? "sse" : "sse+usage";
  }
  return out;
}

absl::StatusOr<uint64_t> Engine::purgeCache(const std::string& model, const std::string& tenant,
                                            const std::string& actor) {
  const uint64_t n = impl_->cache->purge(model, tenant);
  const std::string target = model.empty() && tenant.empty() ? std::string("all")
                             : common::strCat(model.empty() ? "" : "model " + model,
                                              !model.empty() && !tenant.empty() ? ", " : "",
                                              tenant.empty() ? "" : "tenant " + tenant);
  spdlog::warn("cache purge ({}) by {}: {} entries", target, actor, n);
  impl_->audit(actor, model.empty() && tenant.empty() ? "cache.flush" : "cache.purge", target,
               common::strCat(n, " entries"), "ok");
  return n;
}

std::string Engine::url() const {
  common::MutexLock lock(impl_->mu);
  return impl_->front ? impl_->front->url() : "";
}

std::string Engine::metricsUrl() const {
  common::MutexLock lock(impl_->mu);
  return impl_->metrics_front ? impl_->metrics_front->url() : "";
}

uint16_t Engine::metricsPort() const {
  common::MutexLock lock(impl_->mu);
  return impl_->metrics_front ? impl_->metrics_front->port() : 0;
}

uint16_t Engine::port() const {
  common::MutexLock lock(impl_->mu);
  return impl_->front ? impl_->front->port() : 0;
}

v1::Config Engine::config() const {
  common::MutexLock lock(impl_->mu);
  return impl_->config;
}

int64_t Engine::configVersion() const {
  common::MutexLock lock(impl_->mu);
  return impl_->version;
}

metrics::Registry& Engine::metricsRegistry() { return impl_->registry; }

void Engine::reopenLogs() { impl_->access_log->reopen(); }

void Engine::flushAccessLog() { impl_->access_log->flush(); }

std::pair<uint64_t, uint64_t> Engine::accessLogCounts() const {
  return {impl_->access_log->written(), impl_->access_log->dropped()};
}

void Engine::markDraining() {
  common::MutexLock lock(impl_->mu);
  if (impl_->gateway) impl_->gateway->setDraining(true);
}

bool Engine::drain(std::chrono::milliseconds timeout) {
  http::FrontServer* front = nullptr;
  {
    common::MutexLock lock(impl_->mu);
    front = impl_->front.get();
    if (impl_->gateway) impl_->gateway->setDraining(true);
  }
  if (impl_->fleet) impl_->fleet->leave();  // its share of backends and limits goes back to the others
  const bool clean = front ? front->drain(timeout) : true;
  impl_->access_log->flush();  // the drained requests' lines are on disk before the process exits
  return clean;
}

void Engine::stop() {
  Impl& d = *impl_;
  // First, and before taking mu: a heartbeat may be applying a fleet config.
  if (d.fleet) d.fleet->leave();
  {
    common::MutexLock lock(d.sampler_mu);
    d.sampler_stop = true;
  }
  d.sampler_cv.notify_all();
  if (d.sampler.joinable()) d.sampler.join();
  // Before taking mu: a listener call in progress may be waiting for it.
  if (d.gpu) d.gpu->setInventoryListener(nullptr);
  common::MutexLock lock(d.mu);
  if (d.stopped) return;
  d.stopped = true;
  // Every client connection closes now, busy ones too (what a drain has
  // not finished is cut): an embedding caller that keeps the engine does
  // not keep its clients waiting on sockets nothing will answer.
  if (d.front) d.front->closeAll(std::chrono::seconds(1));
  if (d.metrics_front) d.metrics_front->closeAll(std::chrono::seconds(1));
  for (auto& f : d.retired_fronts) f->closeAll(std::chrono::seconds(1));
  if (d.gpu) d.gpu->setBackendView(nullptr);
  if (d.health) d.health->stop();
  if (d.load_scraper) d.load_scraper->stop();
  if (d.io) d.io->stop();
  // The cache tiers' queued lookups post their answers to the workers'
  // io_contexts: run them now, while those still exist (stopped).
  if (d.cache) d.cache->drain();
  for (auto& t : d.drainers) t.join();
  for (auto& [id, sim] : d.sims) sim->stop();
  if (d.sim_io) d.sim_io->stop();
}

std::optional<fleet::Registry::Status> Engine::fleet() const {
  if (!impl_->fleet) return std::nullopt;
  return impl_->fleet->status();
}

void Engine::setControlAddress(const std::string& address) {
  common::MutexLock lock(impl_->mu);
  impl_->control_address = address;
}

std::string Engine::metricsText() const { return impl_->registry.render(); }

gpu::GpuStatus Engine::gpus() const {
  return impl_->gpu ? impl_->gpu->status() : gpu::GpuStatus{};
}

std::shared_ptr<const gpu::Inventory> Engine::gpuInventory() const {
  return impl_->gpu ? impl_->gpu->inventory() : std::make_shared<const gpu::Inventory>();
}

EngineTotals Engine::recentTotals() const {
  {
    common::MutexLock lock(impl_->ticks_mu);
    if (!impl_->ticks.empty()) return impl_->ticks.front();
  }
  return totals();
}

EngineTotals Engine::totals() const {
  EngineTotals t;
  t.ts_ms = wallClockMs();
  if (!impl_->gateway) return t;
  auto g = impl_->gateway->totals();
  t.requests = g.requests;
  t.errors = g.errors;
  t.in_flight = impl_->gateway->inFlight();
  t.latency_buckets = std::move(g.latency_buckets);
  t.latency_sum_seconds = g.latency_sum_seconds;
  t.ttft_buckets = std::move(g.ttft_buckets);
  t.retries = impl_->gateway->retriesTotal();
  t.shed = g.shed;
  t.degraded = g.degraded;
  t.requeued = g.requeued;
  for (const auto& [model, pool] : impl_->gateway->routes()->pools) {
    if (!pool.queue) continue;
    t.queued += pool.queue->waiting();
    for (int c = 0; c < admission::kPriorities; ++c) {
      const auto [met, total] = pool.queue->objectiveCounts(static_cast<admission::Priority>(c));
      t.objective_met[c] += met;
      t.objective_total[c] += total;
    }
  }
  const auto c = impl_->cache->counters();
  t.cache_hits = c.hits;
  t.cache_lookups = c.hits[0] + c.hits[1] + c.hits[2] + c.misses + c.coalesced + c.stale;
  t.cache_coalesced = c.coalesced;
  t.requests_by_endpoint = g.by_endpoint;
  const auto st = impl_->cache->itemCounts();
  t.embedding_item_hits = st.first;
  t.embedding_item_lookups = st.first + st.second;
  t.overload_refused = overload().refused();
  return t;
}

GatewayOverloadStatus Engine::overload() const {
  GatewayOverloadStatus out;
  http::FrontServer* front = impl_->front_now.load();
  if (!front) return out;
  const auto s = front->overloadStats();
  out.open_connections = s.open_connections;
  out.active_requests = s.active_requests;
  out.memory_bytes = s.memory_bytes;
  out.keep_alive_off = s.keep_alive_off;
  out.refused_connections = s.refused_connections;
  out.refused_per_client = s.refused_per_client;
  out.refused_requests = s.refused_requests;
  out.refused_memory = s.refused_memory;
  const auto server = front->serverConfig();
  const v1::Overload& limits = server->overload();
  out.max_connections = limits.max_connections();
  out.max_active_requests = limits.max_active_requests();
  out.memory_budget_bytes = limits.memory_budget_bytes();
  return out;
}

FrontTlsStatus Engine::frontTls() const {
  FrontTlsStatus out;
  http::FrontServer* front = impl_->front_now.load();
  if (!front) return out;
  auto s = front->tlsStats();
  out.enabled = s.enabled;
  out.subject = std::move(s.subject);
  out.not_after_unix = s.not_after_unix;
  out.reloaded_unix = s.reloaded_unix;
  out.client_certificates = s.client_certificates;
  out.client_certificates_required = s.client_certificates_required;
  out.handshake_failures = s.handshake_failures;
  out.reloads = s.reloads;
  out.reload_failures = s.reload_failures;
  out.last_error = std::move(s.last_error);
  return out;
}

IntervalStats intervalStats(const EngineTotals& before, const EngineTotals& after) {
  IntervalStats s;
  const double seconds = std::max(0.001, (after.ts_ms - before.ts_ms) / 1000.0);
  const uint64_t requests = after.requests - std::min(after.requests, before.requests);
  const uint64_t errors = after.errors - std::min(after.errors, before.errors);
  s.requests_per_second = static_cast<double>(requests) / seconds;
  s.retries_per_second = static_cast<double>(after.retries - std::min(after.retries, before.retries)) / seconds;
  s.shed_per_second = static_cast<double>(after.shed - std::min(after.shed, before.shed)) / seconds;
  s.degraded_per_second = static_cast<double>(after.degraded - std::min(after.degraded, before.degraded)) / seconds;
  s.requeued_per_second = static_cast<double>(after.requeued - std::min(after.requeued, before.requeued)) / seconds;
  s.error_rate = requests ? static_cast<double>(errors) / static_cast<double>(requests) : 0;
  s.latency_mean_seconds =
      requests ? std::max(0.0, after.latency_sum_seconds - before.latency_sum_seconds) / static_cast<double>(requests) : 0;
  static const std::vector<double> bounds = metrics::latencyBucketsSeconds();
  s.latency_p50_seconds = metrics::quantileOfDelta(bounds, before.latency_buckets, after.latency_buckets, 0.5);
  s.latency_p99_seconds = metrics::quantileOfDelta(bounds, before.latency_buckets, after.latency_buckets, 0.99);
  s.ttft_p95_seconds = metrics::quantileOfDelta(bounds, before.ttft_buckets, after.ttft_buckets, 0.95);
  auto delta = [](uint64_t a, uint64_t b) { return a - std::min(a, b); };
  if (const uint64_t lookups = delta(after.cache_lookups, before.cache_lookups)) {
    uint64_t hits = 0;
    for (int t = 0; t < 3; ++t) {
      const uint64_t h = delta(after.cache_hits[t], before.cache_hits[t]);
      s.cache_tier_hit_ratio[t] = static_cast<double>(h) / static_cast<double>(lookups);
      hits += h;
    }
    s.cache_hit_ratio = static_cast<double>(hits) / static_cast<double>(lookups);
  }
  s.coalesced_per_second = static_cast<double>(delta(after.cache_coalesced, before.cache_coalesced)) / seconds;
  for (size_t i = 0; i < s.endpoint_per_second.size(); ++i) {
    s.endpoint_per_second[i] =
        static_cast<double>(delta(after.requests_by_endpoint[i], before.requests_by_endpoint[i])) / seconds;
  }
  if (const uint64_t items = delta(after.embedding_item_lookups, before.embedding_item_lookups)) {
    s.embedding_item_hit_ratio =
        static_cast<double>(delta(after.embedding_item_hits, before.embedding_item_hits)) / static_cast<double>(items);
  }
  for (int c = 0; c < 3; ++c) {
    if (const uint64_t n = delta(after.objective_total[c], before.objective_total[c])) {
      s.objective_attainment[c] = std::min(
          1.0, static_cast<double>(delta(after.objective_met[c], before.objective_met[c])) / static_cast<double>(n));
    }
  }
  s.overload_refused_per_second = static_cast<double>(delta(after.overload_refused, before.overload_refused)) / seconds;
  return s;
}

std::vector<store::MetricPoint> Engine::history(const std::string& series, int64_t from_ms, int64_t to_ms) const {
  return impl_->store->queryHistory(series, from_ms, to_ms);
}

std::vector<store::UsageRow> Engine::usage(const store::UsageFilter& filter) const {
  return impl_->store->queryUsage(filter);
}

std::vector<observe::RequestEvent> Engine::requestEvents(size_t limit) const {
  return impl_->request_events->recent(limit);
}

int64_t Engine::uptimeMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - impl_->started)
      .count();
}

std::vector<BackendStatus> Engine::backends() const {
  std::vector<BackendStatus> out;
  if (!impl_->gateway) return out;
  auto routes = impl_->gateway->routes();
  for (const auto& b : routes->backends) {
    BackendStatus st;
    st.name = b->name();
    st.url = common::strCat(b->url().scheme, "://", b->url().hostHeader(), b->url().path_prefix);
    st.state = std::string(b->state());
    st.healthy = b->healthy();
    st.draining = b->draining();
    st.ejected = b->ejected();
    st.cooling_down = b->coolingDown();
    st.ejected_until_ms = st.ejected ? b->ejectedUntilMs() : 0;
    for (const auto& [model, pool] : routes->pools) {
      for (const auto& pb : pool.backends) {
        if (pb == b) st.pools.push_back(model);
      }
    }
    st.configured_weight = b->configuredWeight();
    st.weight_override = b->weightOverride();
    st.available = b->available();
    st.weight = b->effectiveWeight();
    st.max_concurrency = b->config().max_concurrency();
    st.in_flight = b->inFlight();
    st.open_connections = b->open_connections.load();
    st.idle_connections = b->idle_connections.load();
    st.requests = b->requests();
    st.failures = b->failures();
    st.ewma_latency_seconds = b->ewmaLatencySeconds();
    std::tie(st.last_error_ms, st.last_error) = b->lastError();
    st.backing_off = b->backingOff();
    st.back_off_until_ms = st.backing_off ? b->backOffUntilMs() : 0;
    st.back_offs = b->backOffs();
    st.ejections = b->ejectionsTotal();
    st.consecutive_failures = b->consecutiveFailures();
    st.ewma_ms_per_token = b->ewmaMsPerToken();
    st.concurrency_limit = b->concurrencyLimit();
    st.limit_learned = b->learnsLimit();
    st.limit_baseline_ms = b->adaptiveLimit().baselineMs();
    const auto reported = b->reportedLoad();
    if (reported.until_ms > wallClockMs()) {
      st.reported_running = reported.running;
      st.reported_waiting = reported.waiting;
      st.reported_cache_usage = reported.cache_usage;
    }
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<PoolStatus> Engine::pools() const {
  std::vector<PoolStatus> out;
  if (!impl_->gateway) return out;
  auto routes = impl_->gateway->routes();
  for (const auto& [model, pool] : routes->pools) {
    PoolStatus p;
    p.model = model;
    p.policy = std::string(pool.balancer->name());
    for (const auto& b : pool.backends) {
      p.backends.push_back(b->name());
      p.scores.push_back(pool.balancer->score(*b));
    }
    p.active_requests = pool.retry_budget->active();
    p.retries_in_progress = pool.retry_budget->retries();
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<BackendEventInfo> Engine::backendEvents() const {
  std::vector<BackendEventInfo> out;
  for (auto& e : impl_->events->list()) out.push_back({e.ts_ms, e.backend, e.kind, e.reason, e.until_ms});
  return out;
}

uint64_t Engine::retriesTotal() const { return impl_->gateway ? impl_->gateway->retriesTotal() : 0; }

size_t Engine::cachedMetricHandles() const { return impl_->gateway ? impl_->gateway->cachedMetricHandles() : 0; }

std::shared_ptr<sim::SimServer> Engine::simulator(const std::string& backend_name) const {
  common::MutexLock lock(impl_->mu);
  for (const auto& b : impl_->gateway->routes()->backends) {
    if (b->name() != backend_name) continue;
    auto it = impl_->sims.find(b->id());
    return it == impl_->sims.end() ? nullptr : it->second;
  }
  return nullptr;
}

}  // namespace spillway
