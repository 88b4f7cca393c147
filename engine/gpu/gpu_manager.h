// The engine's GPU side: reads the inventory (NVML, `nvidia-smi -L` or the
// declared GPUs) now and on an interval, runs the workers gpu.workers asks
// for through the Launcher, turns them into backends, and reports GPUs,
// instances and workers with what runs on them (status, metrics).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "gpu/gpu_status.h"
#include "gpu/inventory.h"
#include "gpu/launcher.h"
#include "metrics/registry.h"
#include "spillway/v1/config.pb.h"

namespace spillway::gpu {

class Nvml;

// `nvidia-smi -L` run and parsed; source "none" with the reason when it
// cannot be run or read.
Inventory readNvidiaSmi(const std::string& program = "nvidia-smi");

// The declared GPUs of `cfg` as an inventory (validated config: models and
// layouts are known to fit).
Inventory declaredInventory(const v1::Gpu& cfg);

// `config` with the workers' backends added: each joins the pool of each of
// its models (a pool is created where none serves it).
v1::Config withWorkerBackends(const v1::Config& config, const std::vector<v1::Backend>& workers);

class GpuManager {
 public:
  struct Options {
    std::string nvml_library = "libnvidia-ml.so.1";
    std::string spillwayd_path;  // {spillwayd}; default: this binary if it is spillwayd, else one beside it
    std::string log_dir;         // worker logs (NAME.log); "" discards them
  };
  GpuManager(metrics::Registry& registry, Options options);
  ~GpuManager();  // stops the poller and every worker
  GpuManager(const GpuManager&) = delete;
  GpuManager& operator=(const GpuManager&) = delete;

  // Takes `cfg` (validated, defaults applied): reads the inventory now,
  // starts or restarts workers to match and stops those no longer wanted —
  // or, with `drain_removed`, leaves those running and returns their names
  // (the engine retires them once the new routing table is in and their
  // requests have finished).
  std::vector<std::string> configure(const v1::Config& cfg, bool drain_removed = false);
  void retire(const std::vector<std::string>& workers) { launcher_.retire(workers); }
  std::shared_ptr<const Inventory> inventory() const;
  // The backends the workers serve as (stable names and ports across
  // applies while their group and instance stay).
  std::vector<v1::Backend> workerBackends() const;
  std::vector<WorkerState> workers() const { return launcher_.states(); }
  // The GPUs with what runs on them now.
  GpuStatus status() const;
  // Where status() learns about backends (the engine's routing table).
  void setBackendView(std::function<std::vector<BoundBackend>()> view);
  // Called (on the poller thread) when a poll finds GPUs or MIG instances
  // that differ from the last read; null clears it, and once that returns
  // no call is in progress.
  void setInventoryListener(std::function<void()> listener);

 private:
  Inventory read(const v1::Gpu& cfg);  // one read from the configured source; takes read_mu_, never under mu_
  // One worker of `group` on `mig` of `gpu` (null: the whole GPU), and the
  // backend it serves as.
  WorkerSpec workerSpec(const v1::GpuWorkers& group, const std::string& name, const GpuDevice& gpu,
                        const MigDevice* mig, uint16_t port) const;
  static v1::Backend workerBackend(const v1::GpuWorkers& group, const WorkerSpec& spec);
  std::shared_ptr<const GpuStatus> scrapeStatus() const;  // status(), at most 250 ms old
  void poll();

  Options options_;
  mutable common::Mutex mu_;
  v1::Gpu cfg_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Inventory> inventory_ ABSL_GUARDED_BY(mu_);
  int64_t read_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::Backend> worker_backends_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint16_t> ports_ ABSL_GUARDED_BY(mu_);  // worker name -> port, never forgotten
  std::function<std::vector<BoundBackend>()> view_ ABSL_GUARDED_BY(mu_);
  common::Mutex listener_mu_;                         // held while the listener runs
  std::function<void()> listener_ ABSL_GUARDED_BY(listener_mu_);
  common::Mutex read_mu_;                            // one inventory read at a time
  std::unique_ptr<Nvml> nvml_ ABSL_GUARDED_BY(read_mu_);  // opened once, on first use
  bool nvml_tried_ ABSL_GUARDED_BY(read_mu_) = false;
  Launcher launcher_;
  common::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumps on configure
  std::thread poller_;
  mutable common::Mutex scrape_mu_;
  mutable std::shared_ptr<const GpuStatus> scrape_ ABSL_GUARDED_BY(scrape_mu_);
  mutable std::chrono::steady_clock::time_point scrape_at_ ABSL_GUARDED_BY(scrape_mu_);
  std::vector<metrics::Registry::Registration> gauges_;
};

}  // namespace spillway::gpu
