#include "engine.h"

#include <spdlog/spdlog.h>

#include <map>

#include "common/io_pool.h"
#include "common/strings.h"
#include "config/config_error.h"
#include "config/validate.h"
#include "http/front_server.h"
#include "http/gateway.h"
#include "metrics/registry.h"
#include "sim/sim_server.h"
#include "upstream/health_checker.h"

namespace spillway {

struct Engine::Impl {
  // Declaration order is destruction order in reverse: the listener and
  // checker go first, worker threads before the simulators they talk to.
  v1::Config config;
  metrics::Registry registry;
  std::unique_ptr<common::IoPool> sim_io;
  std::map<std::string, std::unique_ptr<sim::SimServer>> sims;  // by backend name
  std::unique_ptr<common::IoPool> io;
  std::unique_ptr<http::Gateway> gateway;
  std::unique_ptr<upstream::HealthChecker> health;
  std::unique_ptr<http::FrontServer> front;
  bool stopped = false;
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}

Engine::~Engine() { stop(); }

absl::StatusOr<std::unique_ptr<Engine>> Engine::start(v1::Config config) {
  auto errors = config::validate(config);
  if (!errors.empty()) return absl::InvalidArgumentError(config::formatErrors(errors));
  config::applyDefaults(config);

  std::unique_ptr<Engine> engine(new Engine());
  Impl& d = *engine->impl_;
  d.config = std::move(config);

  // Simulated backends run in-process on their own threads, behind real
  // loopback sockets, so requests to them take exactly the path real
  // backends do.
  bool any_sim = false;
  for (const auto& b : d.config.backends()) any_sim |= b.url().rfind("sim://", 0) == 0;
  if (any_sim) {
    d.sim_io = std::make_unique<common::IoPool>(std::min(2u, std::max(1u, std::thread::hardware_concurrency())));
    d.sim_io->start();
  }

  auto routes = std::make_shared<http::RouteTable>();
  routes->config = d.config;
  uint64_t next_id = 1;
  std::map<std::string, upstream::BackendPtr> by_name;
  for (const auto& b : d.config.backends()) {
    auto url = common::parseUrl(b.url());
    if (!url.ok()) return url.status();
    if (url->scheme == "sim") {
      std::vector<std::string> models(b.models().begin(), b.models().end());
      auto sim = std::make_unique<sim::SimServer>(*d.sim_io, b.sim(), models, b.name());
      if (auto st = sim->listen("127.0.0.1", 0); !st.ok()) return st;
      url = common::parseUrl(common::strCat("http://127.0.0.1:", sim->port()));
      d.sims[b.name()] = std::move(sim);
    }
    auto backend = std::make_shared<upstream::Backend>(next_id++, b, *url, config::resolveApiKey(b));
    routes->backends.push_back(backend);
    by_name[b.name()] = backend;
  }
  for (const auto& p : d.config.pools()) {
    http::PoolRoute route;
    route.id = next_id++;
    route.model = p.model();
    for (const auto& name : p.backends()) route.backends.push_back(by_name.at(name));
    auto balancer = balance::makeBalancer("round_robin");
    if (!balancer.ok()) return balancer.status();
    route.balancer = std::move(*balancer);
    routes->pools.emplace(p.model(), std::move(route));
  }

  d.io = std::make_unique<common::IoPool>(d.config.server().threads());
  d.gateway = std::make_unique<http::Gateway>(routes, d.io->size(), d.registry);
  d.front = std::make_unique<http::FrontServer>(*d.io, *d.gateway, d.config.server());
  if (auto st = d.front->start(); !st.ok()) return st;
  d.io->start();
  d.health = std::make_unique<upstream::HealthChecker>(d.io->context(0), routes->backends,
                                                       d.gateway->tlsFor(*routes->backends.front()));
  d.health->start();
  spdlog::info("spillway engine listening on {} ({} worker threads, {} backends, {} models)",
               engine->url(), d.io->size(), routes->backends.size(), routes->pools.size());
  return engine;
}

std::string Engine::url() const { return impl_->front ? impl_->front->url() : ""; }

uint16_t Engine::port() const { return impl_->front ? impl_->front->port() : 0; }

const v1::Config& Engine::config() const { return impl_->config; }

bool Engine::drain(std::chrono::milliseconds timeout) {
  if (!impl_->front) return true;
  return impl_->front->drain(timeout);
}

void Engine::stop() {
  Impl& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  if (d.front) d.front->drain(std::chrono::milliseconds(0));
  if (d.health) d.health->stop();
  if (d.io) d.io->stop();
  for (auto& [name, sim] : d.sims) sim->stop();
  if (d.sim_io) d.sim_io->stop();
}

std::string Engine::metricsText() const { return impl_->registry.render(); }

std::vector<BackendStatus> Engine::backends() const {
  std::vector<BackendStatus> out;
  if (!impl_->gateway) return out;
  for (const auto& b : impl_->gateway->routes()->backends) {
    out.push_back({b->name(), common::strCat(b->url().scheme, "://", b->url().hostHeader(), b->url().path_prefix),
                   b->healthy(), b->inFlight(), b->open_connections.load(), b->idle_connections.load()});
  }
  return out;
}

sim::SimServer* Engine::simulator(const std::string& backend_name) const {
  auto it = impl_->sims.find(backend_name);
  return it == impl_->sims.end() ? nullptr : it->second.get();
}

}  // namespace spillway
