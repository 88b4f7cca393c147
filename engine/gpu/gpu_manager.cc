#include "gpu/gpu_manager.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "common/mutex.h"
#include "config/validate.h"
#include "gpu/catalog.h"
#include "gpu/layout.h"
#include "gpu/nvml.h"
#include "gpu/selector.h"
#include "gpu/smi_parser.h"

namespace spillway::gpu {

namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::string defaultSpillwayd() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "spillwayd";
  if (self.filename() == "spillwayd") return self.string();
  // The console and the tests sit beside it in a build or install tree.
  for (const auto& candidate : {self.parent_path() / "spillwayd", self.parent_path() / "../spillwayd/spillwayd",
                                self.parent_path().parent_path() / "app/spillwayd/spillwayd"}) {
    if (std::filesystem::exists(candidate, ec)) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return "spillwayd";
}

}  // namespace

Inventory readNvidiaSmi(const std::string& configured) {
  const std::string program = configured.empty() ? "nvidia-smi" : configured;
  Inventory inv;
  inv.source = "none";
  const std::string cmd = "'" + replaceAll(program, "'", "'\\''") + "' -L 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) {
    inv.detail = "cannot run nvidia-smi";
    return inv;
  }
  std::string text;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0 && text.size() < (1 << 20)) text.append(buf.data(), n);
  const int rc = pclose(f);
  if (rc != 0) {
    const int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    inv.detail = code == 127 ? program + " not found"
                             : "nvidia-smi -L failed (exit " + std::to_string(code) + "): " + text.substr(0, 200);
    return inv;
  }
  SmiParse parsed = parseNvidiaSmiList(text);
  if (!parsed.error.empty()) {
    inv.detail = "nvidia-smi -L: " + parsed.error;
    return inv;
  }
  return std::move(parsed.inventory);
}

namespace {

// What workers and placement depend on: GPUs and their MIG instances (not
// utilisation, memory in use or temperature).
std::string shape(const Inventory& inv) {
  std::string out;
  for (const auto& g : inv.gpus) {
    out += g.uuid + "|" + g.model + (g.mig_enabled ? "|mig" : "|whole");
    for (const auto& m : g.mig) out += "|" + m.uuid + ":" + m.profile;
    out += "\n";
  }
  return out;
}

}  // namespace

Inventory declaredInventory(const v1::Gpu& cfg) {
  Inventory inv;
  inv.source = "declared";
  for (int i = 0; i < cfg.gpus_size(); ++i) {
    const auto& d = cfg.gpus(i);
    const GpuModel* model = findModel(d.model());
    if (!model) continue;  // validation names it
    GpuDevice g;
    g.index = static_cast<uint32_t>(i);
    g.name = "NVIDIA " + model->name + " (declared)";
    g.uuid = d.uuid().empty() ? "GPU-declared-" + std::to_string(i) : d.uuid();
    g.model = model->name;
    g.memory_total_bytes = static_cast<uint64_t>(model->memory_gb * 1024 * 1024 * 1024);
    g.mig_enabled = d.mig_size() > 0;
    const FirstFit fit = placeFirstFit(*model, {d.mig().begin(), d.mig().end()});
    for (size_t n = 0; n < fit.layout.size(); ++n) {
      const Profile& p = *fit.layout[n].profile;
      MigDevice m;
      m.uuid = "MIG-declared-" + std::to_string(i) + "-" + std::to_string(n);
      m.slot = static_cast<uint32_t>(n);
      m.gpu_instance_id = static_cast<uint32_t>(n + 1);
      m.compute_instance_id = 0;
      m.profile = p.name;
      m.profile_id = p.id;
      m.start = static_cast<uint32_t>(fit.layout[n].start);
      m.memory_slices = p.memory_slices;
      m.compute_slices = p.compute_slices;
      m.memory_bytes = static_cast<uint64_t>(p.memory_gb * 1024 * 1024 * 1024);
      m.sm_count = p.sm_count;
      g.mig.push_back(std::move(m));
    }
    inv.gpus.push_back(std::move(g));
  }
  return inv;
}

v1::Config withWorkerBackends(const v1::Config& config, const std::vector<v1::Backend>& workers) {
  if (workers.empty()) return config;
  v1::Config out = config;
  for (const auto& w : workers) {
    *out.add_backends() = w;
    for (const auto& model : w.models()) {
      v1::Pool* pool = nullptr;
      for (auto& p : *out.mutable_pools()) {
        if (p.model() == model) pool = &p;
      }
      if (!pool) {
        pool = out.add_pools();
        pool->set_model(model);
      }
      pool->add_backends(w.name());
    }
  }
  config::applyDefaults(out);  // the new backends' timeouts and health checks
  return out;
}

GpuManager::GpuManager(metrics::Registry& registry, Options options) : options_(std::move(options)) {
  if (options_.spillwayd_path.empty()) options_.spillwayd_path = defaultSpillwayd();
  inventory_ = std::make_shared<Inventory>();
  poller_ = std::thread([this] { poll(); });
  using Rows = std::vector<std::pair<metrics::Labels, double>>;
  auto perGpu = [this](double (*field)(const GpuStatus::Gpu&)) {
    return [this, field] {
      Rows rows;
      for (const auto& g : scrapeStatus()->gpus) {
        const double v = field(g);
        if (v >= 0) rows.push_back({{std::to_string(g.device.index), g.device.model}, v});
      }
      return rows;
    };
  };
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_gpu_utilization_ratio",
      "GPU utilisation, 0..1: NVML's where read, else the busy share of its backends' slots.", {"gpu", "model"},
      perGpu([](const GpuStatus::Gpu& g) { return g.device.utilization; })));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_gpu_memory_used_bytes", "GPU memory in use (NVML).", {"gpu", "model"},
      perGpu([](const GpuStatus::Gpu& g) {
        return g.device.memory_used_bytes ? static_cast<double>(g.device.memory_used_bytes) : -1.0;
      })));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_gpu_memory_total_bytes", "GPU memory.", {"gpu", "model"},
      perGpu([](const GpuStatus::Gpu& g) { return static_cast<double>(g.device.memory_total_bytes); })));
  gauges_.push_back(registry.scopedCallbackGauge("spillway_gpu_temperature_celsius", "GPU temperature (NVML).",
                                                 {"gpu", "model"},
                                                 perGpu([](const GpuStatus::Gpu& g) { return g.device.temperature_c; })));
  gauges_.push_back(registry.scopedCallbackGauge("spillway_gpu_power_watts", "GPU power draw (NVML).", {"gpu", "model"},
                                                 perGpu([](const GpuStatus::Gpu& g) { return g.device.power_watts; })));
  auto perInstance = [this](int what) {
    return [this, what] {
      Rows rows;
      for (const auto& g : scrapeStatus()->gpus) {
        for (const auto& i : g.instances) {
          const double v = what == 0 ? static_cast<double>(i.in_flight) : static_cast<double>(i.queued);
          rows.push_back({{std::to_string(g.device.index), i.mig.uuid, i.mig.profile}, v});
        }
      }
      return rows;
    };
  };
  gauges_.push_back(registry.scopedCallbackGauge("spillway_gpu_instance_in_flight",
                                                 "Requests on the backends bound to each MIG instance.",
                                                 {"gpu", "instance", "profile"}, perInstance(0)));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_gpu_instance_queued",
      "Requests waiting in the gateway queue whose class may be placed on each MIG instance.",
      {"gpu", "instance", "profile"}, perInstance(1)));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_gpu_workers", "Launched inference servers by state.", {"state"}, [this] {
        std::map<std::string, double> by;
        for (const char* s : {"starting", "healthy", "unhealthy", "exited"}) by[s] = 0;
        for (const auto& w : launcher_.states()) by[w.state] += 1;
        Rows rows;
        for (const auto& [s, n] : by) rows.push_back({{s}, n});
        return rows;
      }));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_gpu_worker_restarts", "Times each launched inference server was restarted.", {"backend"}, [this] {
        Rows rows;
        for (const auto& w : launcher_.states()) rows.push_back({{w.name}, static_cast<double>(w.restarts)});
        return rows;
      }));
}

GpuManager::~GpuManager() {
  gauges_.clear();
  {
    common::MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  poller_.join();
  launcher_.setWorkers({});
}

Inventory GpuManager::read(const v1::Gpu& cfg) {
  common::MutexLock lock(read_mu_);
  const std::string& source = cfg.inventory();
  if (source == "off") return {"none", "gpu.inventory is off", {}};
  if (source == "declared") return declaredInventory(cfg);
  if (source == "nvidia_smi") return readNvidiaSmi(cfg.nvidia_smi());
  if (!nvml_tried_) {
    nvml_tried_ = true;
    nvml_ = std::make_unique<Nvml>(options_.nvml_library);
  }
  Inventory inv = nvml_->read();
  if (source == "nvml" || !inv.gpus.empty()) return inv;
  // auto, and NVML found nothing.
  const std::string why = nvml_->ok() ? "NVML sees no GPU" : "NVML: " + nvml_->error();
  if (cfg.gpus_size() == 0) return {"none", why, {}};
  Inventory declared = declaredInventory(cfg);
  declared.detail = why + "; using the declared GPUs";
  return declared;
}

WorkerSpec GpuManager::workerSpec(const v1::GpuWorkers& group, const std::string& name, const GpuDevice& gpu,
                                  const MigDevice* mig, uint16_t port) const {
  const std::string uuid = mig ? mig->uuid : gpu.uuid;
  WorkerSpec s;
  s.name = name;
  s.instance = uuid;
  s.port = port;
  const std::string model = group.models_size() ? group.models(0) : "";
  std::string cmd = group.command();
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, std::string>>{
           {"{port}", std::to_string(port)},
           {"{uuid}", uuid},
           {"{gpu}", std::to_string(gpu.index)},
           {"{profile}", mig ? mig->profile : ""},
           {"{model}", model},
           {"{name}", name},
           {"{spillwayd}", options_.spillwayd_path}}) {
    cmd = replaceAll(cmd, key, value);
  }
  s.command = cmd;
  s.env = {"CUDA_VISIBLE_DEVICES=" + uuid};
  for (const auto& e : group.env()) s.env.push_back(e);
  s.health_path = group.health_path().empty() ? "/health" : group.health_path();
  s.start_timeout = std::chrono::milliseconds(group.start_timeout_ms() ? group.start_timeout_ms() : 300000);
  s.backoff = std::chrono::milliseconds(group.restart_backoff_ms() ? group.restart_backoff_ms() : 1000);
  s.max_backoff = std::chrono::milliseconds(group.max_restart_backoff_ms() ? group.max_restart_backoff_ms() : 60000);
  if (!options_.log_dir.empty()) s.log_path = (std::filesystem::path(options_.log_dir) / (name + ".log")).string();
  return s;
}

v1::Backend GpuManager::workerBackend(const v1::GpuWorkers& group, const WorkerSpec& spec) {
  v1::Backend b;
  b.set_name(spec.name);
  b.set_url("http://127.0.0.1:" + std::to_string(spec.port));
  for (const auto& m : group.models()) b.add_models(m);
  b.set_gpu(spec.instance);
  b.set_max_concurrency(group.max_concurrency());
  b.mutable_health_check()->set_path(spec.health_path);
  return b;
}

std::vector<std::string> GpuManager::configure(const v1::Config& config, bool drain_removed) {
  std::vector<WorkerSpec> specs;
  auto inventory = std::make_shared<const Inventory>(read(config.gpu()));  // not under mu_: views keep reading
  {
    common::MutexLock lock(mu_);
    cfg_ = config.gpu();
    inventory_ = std::move(inventory);
    read_ms_ = nowMs();
    ++generation_;
    worker_backends_.clear();
    for (const auto& group : cfg_.workers()) {
      for (const auto& g : inventory_->gpus) {
        // Every MIG instance, or the whole GPU when MIG is off.
        std::vector<std::pair<std::string, const MigDevice*>> places;
        if (g.mig.empty()) {
          places.push_back({group.name() + "-g" + std::to_string(g.index), nullptr});
        } else {
          for (const auto& m : g.mig) {
            places.push_back({group.name() + "-g" + std::to_string(g.index) + "-" + std::to_string(m.slot), &m});
          }
        }
        for (const auto& [name, mig] : places) {
          const Binding at{&g, mig};
          if (group.instances_size() > 0 && !selectsAny({group.instances().begin(), group.instances().end()}, name,
                                                        mig ? mig->uuid : g.uuid, at)) {
            continue;
          }
          // A name keeps its port for the engine's life: a worker dropped and
          // brought back (an apply undone) is where the routing table says.
          uint16_t& port = ports_[name];
          if (port == 0) port = Launcher::freePort();
          specs.push_back(workerSpec(group, name, g, mig, port));
          worker_backends_.push_back(workerBackend(group, specs.back()));
        }
      }
    }
  }
  if (!options_.log_dir.empty() && !specs.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.log_dir, ec);
  }
  auto kept = launcher_.setWorkers(std::move(specs), drain_removed);
  cv_.notify_all();
  return kept;
}

std::shared_ptr<const Inventory> GpuManager::inventory() const {
  common::MutexLock lock(mu_);
  return inventory_;
}

std::vector<v1::Backend> GpuManager::workerBackends() const {
  common::MutexLock lock(mu_);
  return worker_backends_;
}

void GpuManager::setBackendView(std::function<std::vector<BoundBackend>()> view) {
  common::MutexLock lock(mu_);
  view_ = std::move(view);
}

std::shared_ptr<const GpuStatus> GpuManager::scrapeStatus() const {
  // One scrape reads several families: the view is built once for them.
  common::MutexLock lock(scrape_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!scrape_ || now - scrape_at_ > std::chrono::milliseconds(250)) {
    scrape_ = std::make_shared<const GpuStatus>(status());
    scrape_at_ = now;
  }
  return scrape_;
}

GpuStatus GpuManager::status() const {
  std::shared_ptr<const Inventory> inv;
  std::function<std::vector<BoundBackend>()> view;
  GpuStatus out;
  {
    common::MutexLock lock(mu_);
    inv = inventory_;
    view = view_;
    out.read_ms = read_ms_;
  }
  out.source = inv->source;
  out.detail = inv->detail;
  for (const auto& g : inv->gpus) {
    GpuStatus::Gpu s;
    s.device = g;
    s.device.mig.clear();
    for (const auto& m : g.mig) s.instances.push_back({m, {}, {}, 0, 0, 0, -1});
    out.gpus.push_back(std::move(s));
  }
  if (view) {
    for (const auto& b : view()) {
      const Binding at = resolve(*inv, b.gpu);
      if (!at.gpu) continue;
      GpuStatus::Gpu& g = out.gpus[static_cast<size_t>(at.gpu - inv->gpus.data())];
      g.in_flight += b.in_flight;
      g.capacity += b.capacity;
      g.queued += b.queued;
      if (!at.mig) {
        g.backends.push_back(b.name);
        continue;
      }
      InstanceStatus& i = g.instances[static_cast<size_t>(at.mig - at.gpu->mig.data())];
      i.backends.push_back(b.name);
      i.in_flight += b.in_flight;
      i.capacity += b.capacity;
      i.queued += b.queued;
      for (const auto& c : b.classes) {
        if (std::find(i.classes.begin(), i.classes.end(), c) == i.classes.end()) i.classes.push_back(c);
      }
    }
  }
  for (auto& g : out.gpus) {
    for (auto& i : g.instances) {
      if (i.capacity > 0) i.utilization = std::min(1.0, static_cast<double>(i.in_flight) / i.capacity);
    }
    if (g.device.utilization < 0 && g.capacity > 0) {
      g.device.utilization = std::min(1.0, static_cast<double>(g.in_flight) / g.capacity);
    }
  }
  out.workers = launcher_.states();
  return out;
}

void GpuManager::poll() {
  common::MutexLock lock(mu_);
  while (!stop_) {
    const uint64_t seen = generation_;
    const auto interval = std::chrono::milliseconds(cfg_.poll_interval_ms() ? cfg_.poll_interval_ms() : 5000);
    cv_.wait_for(lock, interval, [&] {
      mu_.assertHeld();
      return stop_ || generation_ != seen;
    });
    if (stop_) break;
    if (generation_ != seen) continue;  // just read by configure()
    if (inventory_->source != "nvml" && inventory_->source != "nvidia_smi") continue;  // declared ones do not change
    // Not under mu_: running nvidia-smi takes a while, and status() (the
    // console's snapshot, a scrape) must not wait for it.
    const v1::Gpu cfg = cfg_;
    lock.unlock();
    Inventory inv = read(cfg);
    lock.lock();
    if (stop_ || generation_ != seen) continue;  // configure() read meanwhile: its read stands
    const bool changed = shape(inv) != shape(*inventory_);
    inventory_ = std::make_shared<const Inventory>(std::move(inv));
    read_ms_ = nowMs();
    if (!changed) continue;
    // Workers and routes follow (the engine calls configure(), which takes
    // mu_): without the lock.
    lock.unlock();
    {
      common::MutexLock call(listener_mu_);
      if (listener_) listener_();
    }
    lock.lock();
  }
}

void GpuManager::setInventoryListener(std::function<void()> listener) {
  common::MutexLock lock(listener_mu_);
  listener_ = std::move(listener);
}

}  // namespace spillway::gpu
