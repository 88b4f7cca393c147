// spillwayd: the headless Spillway engine, and `spillwayd sim`, a simulated
// OpenAI-compatible LLM server.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>
#ifdef SPILLWAY_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <cstdlib>
#include <iostream>
#include <unistd.h>
#include <optional>
#include <string>
#include <vector>

#ifdef SPILLWAY_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include "common/io_pool.h"
#include "common/process.h"
#include "common/strings.h"
#include "common/url.h"
#include "config/config_loader.h"
#include "config/validate.h"
#include "config_reloader.h"
#include "control/control_server.h"
#include "engine.h"
#include "gpu/gpu_manager.h"
#include "gpu/nvml.h"
#include "gpu/planner.h"
#include "sim/sim_server.h"

namespace po = boost::program_options;
using namespace spillway;

namespace {

// The data directory holds config versions (with backends' API keys), the
// audit log and the control token: only spillwayd's user may enter it.
void protectDataDir(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return;  // the store reports what is wrong with it
  if ((st.st_mode & 077) != 0) {
    if (::chmod(dir.c_str(), st.st_mode & 0700) == 0) {
      spdlog::info("data directory {}: mode {:o} -> {:o} (it holds config versions with API keys and the audit log)",
                   dir, st.st_mode & 0777, st.st_mode & 0700);
    } else {
      spdlog::warn("data directory {} is readable by other users (mode {:o}) and cannot be changed: {}", dir,
                   st.st_mode & 0777, std::strerror(errno));
    }
  }
}

// Open files: the soft limit raised to the hard one; a warning when it is
// below what server.overload.max_connections plans for (past the file
// limit, accept fails before the gateway can answer 503).
void checkFileLimit(uint64_t max_connections) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  const uint64_t needed = max_connections + 1024;  // upstream connections, files, the store
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed) {
    spdlog::warn("open-file limit {} is below server.overload.max_connections ({}) + 1024: raise it (ulimit -n, "
                 "LimitNOFILE=) or lower max_connections, or connections fail before the gateway can refuse them",
                 rl.rlim_cur, max_connections);
  }
}


// Blocks SIGINT/SIGTERM (and, for the engine, SIGHUP and SIGUSR1) in every thread
// (threads inherit the mask) so the main thread can wait for them
// synchronously with sigwait.
sigset_t blockSignals(bool reload = false) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (reload) {
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);  // reopen the access log (logrotate)
  }
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int waitForSignal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

// Tells systemd (Type=notify) how the service is doing; a no-op outside
// systemd (no NOTIFY_SOCKET) and in builds without libsystemd.
void notifySystemd(const std::string& state) {
#ifdef SPILLWAY_WITH_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

#ifndef SPILLWAY_VERSION
#define SPILLWAY_VERSION "0.0.0"
#endif

bool setLogLevel(const std::string& level) {
  auto l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off") return false;
  spdlog::set_level(l);
  return true;
}

// Parses the command line, handles --help and --log-level. Returns the exit
// code when the program should stop here (bad flags: 2, --help: 0).
std::optional<int> parseCommandLine(const char* prog, int argc, char** argv, const po::options_description& opts,
                                    po::variables_map& vm, const po::positional_options_description& positional = {}) {
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << prog << ": " << e.what() << "\n\n" << opts << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  if (opts.find_nothrow("version", false) && vm.count("version")) {
    std::cout << prog << " " << SPILLWAY_VERSION << "\n";
    return 0;
  }
  if (!setLogLevel(vm["log-level"].as<std::string>())) {
    std::cerr << prog << ": unknown --log-level\n";
    return 2;
  }
  return std::nullopt;
}

int runSim(int argc, char** argv) {
  po::options_description opts("spillwayd sim: a simulated OpenAI-compatible LLM server\n\nOptions");
  std::string listen = "127.0.0.1:8000", profile_name = "default", failure_kind = "http_500";
  std::vector<std::string> models;
  unsigned threads = 0;
  v1::SimProfile p;
  uint32_t prefill_base_ms = 0, prefill_per_token_us = 0, inter_token_ms = 0, max_num_seqs = 0,
           max_waiting = 0, min_out = 0, max_out = 0, prefix_block_tokens = 0, prefix_cache_blocks = 0;
  uint64_t seed = 0;
  double failure_rate = 0;
  opts.add_options()
      ("help,h", "show this help")
      ("listen", po::value(&listen)->default_value(listen), "HOST:PORT to serve on (port 0 picks one)")
      ("profile", po::value(&profile_name)->default_value(profile_name), "built-in profile: default, fast, slow, instant")
      ("model", po::value(&models)->composing(), "model id listed by /v1/models (repeatable; default: sim-model)")
      ("threads", po::value(&threads)->default_value(0), "worker threads (0 = one per core)")
      ("prefill-base-ms", po::value(&prefill_base_ms), "fixed part of time to first token")
      ("prefill-per-token-us", po::value(&prefill_per_token_us), "time to first token added per prompt token")
      ("inter-token-ms", po::value(&inter_token_ms), "time between generated tokens")
      ("max-num-seqs", po::value(&max_num_seqs), "sequences generated at once")
      ("max-waiting", po::value(&max_waiting), "requests that may wait for a slot before 503")
      ("min-output-tokens", po::value(&min_out), "shortest natural answer")
      ("max-output-tokens", po::value(&max_out), "longest natural answer")
      ("seed", po::value(&seed), "text generator seed")
      ("prefix-block-tokens", po::value(&prefix_block_tokens), "prefix (KV) cache block size in tokens; 0 = no cache")
      ("prefix-cache-blocks", po::value(&prefix_cache_blocks), "blocks the prefix cache holds (default 4096)")
      ("failure-rate", po::value(&failure_rate), "fraction of requests to fail (0..1)")
      ("failure-kind", po::value(&failure_kind)->default_value(failure_kind), "http_500, http_503, http_429 or reset_mid_stream")
      ("log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error");
  po::variables_map vm;
  if (auto code = parseCommandLine("spillwayd sim", argc, argv, opts, vm)) return *code;
  p.set_profile(profile_name);
  p.set_prefill_base_ms(prefill_base_ms);
  p.set_prefill_per_token_us(prefill_per_token_us);
  p.set_inter_token_ms(inter_token_ms);
  p.set_max_num_seqs(max_num_seqs);
  p.set_max_waiting(max_waiting);
  p.set_min_output_tokens(min_out);
  p.set_max_output_tokens(max_out);
  p.set_seed(seed);
  p.set_prefix_block_tokens(prefix_block_tokens);
  p.set_prefix_cache_blocks(prefix_cache_blocks);
  p.mutable_failures()->set_rate(failure_rate);
  v1::FailureKind kind;
  std::string upper = failure_kind;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!v1::FailureKind_Parse(upper, &kind) || kind == v1::FAILURE_KIND_UNSPECIFIED) {
    std::cerr << "spillwayd sim: unknown --failure-kind \"" << failure_kind
              << "\" (expected http_500, http_503, http_429 or reset_mid_stream)\n";
    return 2;
  }
  p.mutable_failures()->set_kind(kind);
  if (failure_rate < 0 || failure_rate > 1) {
    std::cerr << "spillwayd sim: --failure-rate must be between 0 and 1\n";
    return 2;
  }
  if (auto st = config::fillSimDefaults(p); !st.ok()) {
    std::cerr << "spillwayd sim: " << st.message() << "\n";
    return 2;
  }
  auto hp = common::parseHostPort(listen);
  if (!hp.ok()) {
    std::cerr << "spillwayd sim: --listen: " << hp.status().message() << "\n";
    return 2;
  }
  if (models.empty()) models.push_back("sim-model");

  sigset_t signals = blockSignals();
  common::IoPool io(threads);
  sim::SimServer server(io, p, models, "sim");
  io.start();
  if (auto st = server.listen(hp->host, hp->port); !st.ok()) {
    std::cerr << "spillwayd sim: " << st.message() << "\n";
    return 1;
  }
  std::string host = hp->host.find(':') != std::string::npos ? "[" + hp->host + "]" : hp->host;
  std::cout << "spillwayd sim: listening on http://" << host << ":" << server.port() << " (profile "
            << p.profile() << ", " << p.max_num_seqs() << " slots, " << p.max_waiting() << " waiting)"
            << std::endl;
  waitForSignal(signals);
  server.stop();
  io.stop();
  return 0;
}

// `spillwayd gpu plan|list`: the layout planner and the inventory, offline
// (no engine, no control plane).
int runGpu(int argc, char** argv) {
  po::options_description opts(
      "spillwayd gpu: GPUs and MIG layouts, without a running engine\n\n"
      "Usage: spillwayd gpu list [--source auto|nvml|nvidia_smi]\n"
      "       spillwayd gpu plan --demand NAME:PRIORITY:MEMORY_GB:SHARE ... [--gpu MODEL[xN] ...]\n\n"
      "plan proposes MIG layouts that keep NVIDIA's placement rules, best first, with the nvidia-smi\n"
      "commands, a mig-parted config and the gpu config section for each; it never applies anything.\n"
      "Without --gpu it plans for the GPUs NVML (or nvidia-smi -L) finds here.\n\n"
      "Options");
  std::vector<std::string> gpu_specs, demand_specs, rest;
  unsigned alternatives = 3;
  std::string source = "auto", nvml_library = "libnvidia-ml.so.1";
  opts.add_options()
      ("help,h", "show this help")
      ("gpu", po::value(&gpu_specs)->composing(), "GPU model, optionally xCOUNT, e.g. A100-80GB or H100-80GBx8 (repeatable)")
      ("demand", po::value(&demand_specs)->composing(), "NAME:PRIORITY:MEMORY_GB:SHARE, e.g. chat:critical:10:0.3 (repeatable)")
      ("alternatives", po::value(&alternatives)->default_value(alternatives), "layouts to show")
      ("source", po::value(&source)->default_value(source), "list: auto (NVML, else nvidia-smi -L), nvml or nvidia_smi")
      ("nvml-library", po::value(&nvml_library)->default_value(nvml_library), "the NVML library to load")
      ("log-level", po::value<std::string>()->default_value("warn"), "trace, debug, info, warn, error")
      ("args", po::value(&rest), "list or plan");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  if (auto code = parseCommandLine("spillwayd gpu", argc, argv, opts, vm, pos)) return *code;
  const std::string sub = rest.empty() ? "" : rest[0];
  if (sub != "list" && sub != "plan") {
    std::cerr << "spillwayd gpu: expected list or plan\n\n" << opts << "\n";
    return 2;
  }
  // What this machine's driver says: NVML, else (auto) nvidia-smi -L.
  auto readLocal = [&]() {
    gpu::Inventory inv;
    if (source != "nvidia_smi") inv = gpu::Nvml(nvml_library).read();
    if (source == "nvidia_smi" || (source == "auto" && inv.gpus.empty())) {
      gpu::Inventory smi = gpu::readNvidiaSmi();
      if (!smi.gpus.empty() || source == "nvidia_smi") return smi;
      inv.detail += "; " + smi.detail;
    }
    return inv;
  };
  if (sub == "list") {
    const gpu::Inventory inv = readLocal();
    std::printf("inventory: %s%s%s\n", inv.source.c_str(), inv.detail.empty() ? "" : " - ", inv.detail.c_str());
    for (const auto& g : inv.gpus) {
      std::printf("GPU %u  %s  %s  %.0f GB  catalog %s  MIG %s%s\n", g.index, g.name.c_str(), g.uuid.c_str(),
                  g.memory_total_bytes / 1073741824.0, g.model.empty() ? "(unknown)" : g.model.c_str(),
                  g.mig_enabled ? "on" : "off", g.mig_pending ? " (change pending reset)" : "");
      for (const auto& m : g.mig) {
        std::printf("  %-11s %s  gi %u ci %u  %d SMs  %.0f GB\n", m.profile.c_str(), m.uuid.c_str(), m.gpu_instance_id,
                    m.compute_instance_id, m.sm_count, m.memory_bytes / 1073741824.0);
      }
    }
    return inv.gpus.empty() ? 1 : 0;
  }
  std::vector<const gpu::GpuModel*> gpus;
  for (const auto& spec : gpu_specs) {
    std::string model;
    uint32_t n = 1;
    if (auto err = gpu::parseGpus(spec, model, n); !err.empty()) {
      std::cerr << "spillwayd gpu plan: --gpu: " << err << "\n";
      return 2;
    }
    gpus.insert(gpus.end(), n, gpu::findModel(model));
  }
  std::vector<gpu::Demand> demands;
  for (const auto& spec : demand_specs) {
    gpu::Demand d;
    if (auto err = gpu::parseDemand(spec, d); !err.empty()) {
      std::cerr << "spillwayd gpu plan: --demand: " << err << "\n";
      return 2;
    }
    demands.push_back(d);
  }
  if (demands.empty()) {
    std::cerr << "spillwayd gpu plan: at least one --demand NAME:PRIORITY:MEMORY_GB:SHARE is needed\n";
    return 2;
  }
  if (gpus.empty()) {
    for (const auto& g : readLocal().gpus) {
      if (const auto* m = gpu::findModel(g.model)) gpus.push_back(m);
    }
    if (gpus.empty()) {
      std::cerr << "spillwayd gpu plan: no GPU here that the catalog knows; name them with --gpu MODEL[xN] ("
                << gpu::modelNames() << ")\n";
      return 2;
    }
  }
  const gpu::Plan plan = gpu::plan(gpus, demands, static_cast<int>(alternatives));
  std::cout << gpu::formatPlan(plan);
  return plan.error.empty() ? 0 : 1;
}

int runEngine(int argc, char** argv) {
  po::options_description opts(
      "spillwayd: the Spillway engine, an OpenAI-compatible gateway for LLM inference servers\n\n"
      "Usage: spillwayd [options]\n       spillwayd sim [options]   (a simulated LLM server; see spillwayd sim --help)\n"
      "       spillwayd gpu list|plan   (GPUs and MIG layout planning, offline; see spillwayd gpu --help)\n\n"
      "Options");
  std::string config_file, listen, data_dir, check_file, control_listen;
  unsigned threads = 0, watch_ms = 0;
  opts.add_options()
      ("help,h", "show this help")
      ("version", "print the version and exit")
      ("config,c", po::value(&config_file), "YAML config file (default: the embedded default config); SIGHUP "
       "applies it again (validated first: a file with errors changes nothing)")
      ("watch-config", po::value(&watch_ms)->implicit_value(1000),
       "also apply --config whenever the file changes, checking every N ms (default 1000): how a Kubernetes "
       "ConfigMap mount updates")
      ("listen,l", po::value(&listen), "HOST:PORT of the front listener; overrides server.listen")
      ("allow-plaintext", "serve plain HTTP on a non-loopback address (TLS ends in front: a container, an ingress); sets server.allow_plaintext")
      ("threads", po::value(&threads), "worker threads; overrides server.threads (0 = one per core)")
      ("control-listen", po::value(&control_listen), "HOST:PORT of the gRPC control plane; overrides control.listen (default 127.0.0.1:50051; \"none\" disables)")
      ("data-dir", po::value(&data_dir), "directory for engine state: config versions, audit log (created if missing; default: in memory)")
      ("check-config", po::value(&check_file), "validate FILE, print every error, exit 0 when valid, 1 otherwise")
      ("print-default-config", "print the embedded default config and exit")
      ("log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn, error");
  po::variables_map vm;
  if (auto code = parseCommandLine("spillwayd", argc, argv, opts, vm)) return *code;
  if (vm.count("print-default-config")) {
    std::cout << config::defaultConfigYaml();
    return 0;
  }
  if (vm.count("check-config")) {
    auto r = config::loadYamlFile(check_file);
    if (!r.ok()) {
      std::cerr << config::formatErrors(r.errors);
      std::cerr << r.errors.size() << " error" << (r.errors.size() == 1 ? "" : "s") << " in " << check_file << "\n";
      return 1;
    }
    std::cout << check_file << ": ok\n";
    return 0;
  }

  // Taken before the file is read: --watch-config applies any later version.
  const ConfigReloader::FileStamp loaded_stamp =
      config_file.empty() ? ConfigReloader::FileStamp{} : ConfigReloader::stamp(config_file);
  config::LoadResult loaded = config_file.empty()
                                  ? config::loadYaml(config::defaultConfigYaml(), "<embedded default.yaml>")
                                  : config::loadYamlFile(config_file);
  if (!loaded.ok()) {
    std::cerr << config::formatErrors(loaded.errors);
    return 1;
  }
  if (vm.count("watch-config") && config_file.empty()) {
    std::cerr << "spillwayd: --watch-config needs --config FILE\n";
    return 2;
  }
  // What the command line pins, applied again to every config a reload
  // reads from the file.
  auto overrides = [&vm, listen, threads, control_listen](v1::Config& cfg) {
    if (vm.count("listen")) cfg.mutable_server()->set_listen(listen);
    if (vm.count("allow-plaintext")) cfg.mutable_server()->set_allow_plaintext(true);
    if (vm.count("threads")) cfg.mutable_server()->set_threads(threads);
    if (vm.count("control-listen")) cfg.mutable_control()->set_listen(control_listen);
    if (cfg.control().listen().empty()) cfg.mutable_control()->set_listen("127.0.0.1:50051");
  };
  v1::Config cfg = loaded.config;
  overrides(cfg);
  sigset_t signals = blockSignals(/*reload=*/true);
#ifdef SPILLWAY_WITH_MIMALLOC
  // Also keeps the link to mimalloc (its malloc replaces glibc's) explicit.
  spdlog::debug("allocator: mimalloc {}", mi_version());
#endif
  EngineOptions engine_options{data_dir, "startup"};
#ifdef SPILLWAY_WITH_MIMALLOC
  // server.overload.memory_budget_bytes counts what the allocator has
  // committed (mimalloc's own figure: no /proc read, and freed memory it
  // keeps cached counts as used). Without mimalloc: resident memory.
  engine_options.memory_gauge = [] {
    size_t elapsed = 0, user = 0, system = 0, rss = 0, peak_rss = 0, commit = 0, peak_commit = 0, faults = 0;
    mi_process_info(&elapsed, &user, &system, &rss, &peak_rss, &commit, &peak_commit, &faults);
    return static_cast<uint64_t>(commit);
  };
#endif
  protectDataDir(data_dir);
  checkFileLimit(cfg.server().overload().max_connections() ? cfg.server().overload().max_connections() : 10000);
  auto engine = Engine::start(cfg, EngineOptions(engine_options));
  if (!engine.ok()) {
    std::cerr << "spillwayd: " << engine.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<control::ControlServer> control_server;
  if ((*engine)->config().control().listen() != "none") {
    auto cs = control::ControlServer::start(**engine, {(*engine)->config().control(), data_dir});
    if (!cs.ok()) {
      std::cerr << "spillwayd: " << cs.status().message() << "\n";
      return 1;
    }
    control_server = std::move(*cs);
  }
  // The reloader (and its metrics) before the address is announced: whoever
  // reads it may scrape /metrics or send SIGHUP at once.
  std::unique_ptr<ConfigReloader> reloader;
  if (!config_file.empty()) {
    reloader = std::make_unique<ConfigReloader>(
        **engine, ConfigReloader::Options{config_file, loaded_stamp, overrides, std::chrono::milliseconds(watch_ms)});
    if (watch_ms) spdlog::info("watching {} for changes (every {} ms)", config_file, watch_ms);
  }
  const std::string url = (*engine)->url();
  std::string model = (*engine)->config().pools_size() ? (*engine)->config().pools(0).model() : "MODEL";
  std::cout << "spillwayd: listening on " << url << "\n"
            << "  models:  curl -s " << url << "/v1/models\n"
            << "  metrics: curl -s " << url << "/metrics\n"
            << "  try:     curl -s " << url << "/v1/chat/completions -H 'Content-Type: application/json' \\\n"
            << "             -d '{\"model\":\"" << model << "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'\n"
            << "  Ctrl-C drains in-flight requests and exits." << std::endl;
  if (control_server) {
    auto hp = common::parseHostPort((*engine)->config().control().listen());
    // Where the other replicas and the console reach this one's control
    // plane: a wildcard listen address is advertised as $POD_IP, else the
    // host name.
    std::string advertised = hp->host;
    if (advertised == "0.0.0.0" || advertised == "::") {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      const char* pod_ip = std::getenv("POD_IP");
      advertised = pod_ip && *pod_ip ? pod_ip : host;
    }
    if (advertised.find(':') != std::string::npos) advertised = "[" + advertised + "]";
    (*engine)->setControlAddress(advertised + ":" + std::to_string(control_server->port()));
    std::cout << "spillwayd: control plane on " << hp->host << ":" << control_server->port()
              << (control_server->tls() ? " (TLS, certificate SHA-256 " + control_server->fingerprint() + ")"
                                        : " (plaintext, loopback only)")
              << "\n";
    if (!control_server->generatedTokenFile().empty()) {
      std::cout << "  operator token written to " << control_server->generatedTokenFile()
                << " (spillctl --addr " << hp->host << ":" << control_server->port() << " --token-file "
                << control_server->generatedTokenFile() << " status)\n";
    }
    std::cout << std::flush;
  }

  auto notifyReady = [&] {
    notifySystemd(common::strCat("READY=1\nSTATUS=serving on ", url, ", config v", (*engine)->configVersion()));
  };
  notifyReady();

  int sig = 0;
  while ((sig = waitForSignal(signals)) == SIGHUP || sig == SIGUSR1) {
    if (sig == SIGUSR1) {
      spdlog::info("received SIGUSR1: reopening the access log");
      (*engine)->reopenLogs();
      continue;
    }
    if (!reloader) {
      spdlog::warn("received SIGHUP: spillwayd runs on the embedded default config (no --config FILE); nothing to reload");
      continue;
    }
    notifySystemd("RELOADING=1");
    (void)reloader->reload("SIGHUP");
    notifyReady();
  }
  notifySystemd("STOPPING=1\nSTATUS=draining");
  reloader.reset();  // no reloads while draining
  const char* sig_name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  if (const uint32_t delay_ms = (*engine)->config().server().drain_delay_ms(); delay_ms > 0) {
    // Not ready, still serving: load balancers see the probe fail and stop
    // sending before the listener closes. A second signal ends the wait.
    (*engine)->markDraining();
    spdlog::info("received {}: /readyz answers 503 for {} ms before the drain (a second signal skips the wait)",
                 sig_name, delay_ms);
    const timespec wait{static_cast<time_t>(delay_ms / 1000), static_cast<long>(delay_ms % 1000) * 1000000};
    int next = 0;
    while ((next = sigtimedwait(&signals, nullptr, &wait)) == SIGHUP || next == SIGUSR1) {
    }
    if (next > 0) spdlog::info("received {} again: draining now", next == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  const auto drain_timeout = std::chrono::milliseconds((*engine)->config().server().drain_timeout_ms());
  spdlog::info("received {}, draining (up to {} ms)", sig_name, drain_timeout.count());
  control_server.reset();  // no more changes while draining
  bool clean = (*engine)->drain(drain_timeout);
  if (!clean) spdlog::warn("drain timeout reached; cutting the requests still in flight");
  (*engine)->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  common::raiseOpenFileLimit();
  if (argc > 1 && std::string(argv[1]) == "sim") return runSim(argc - 1, argv + 1);
  if (argc > 1 && std::string(argv[1]) == "gpu") return runGpu(argc - 1, argv + 1);
  return runEngine(argc, argv);
}
