// Launches and supervises one inference server per GPU instance: the
// configured command runs under /bin/sh with CUDA_VISIBLE_DEVICES set to
// the instance, in its own process group; the launcher polls its health
// path until it answers 200 (then the engine's health checker takes over),
// restarts it with doubling back-off when it exits or never becomes
// healthy (killing what is left of its process group first), and drains it (SIGTERM, then SIGKILL after a grace) when it is
// no longer wanted or the engine stops. A dying engine takes its workers
// with it (PR_SET_PDEATHSIG).
//
// One supervisor thread; every public method is thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "gpu/gpu_status.h"

namespace spillway::gpu {

struct WorkerSpec {
  std::string name;        // the backend it becomes (unique)
  std::string instance;    // MIG or GPU UUID it runs on
  std::string command;     // placeholders already expanded
  std::vector<std::string> env;  // NAME=value, added to the engine's environment
  uint16_t port = 0;
  std::string health_path = "/health";
  std::chrono::milliseconds start_timeout{300000};
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  std::string log_path;    // stdout and stderr; "" discards them
  bool operator==(const WorkerSpec&) const = default;
};

class Launcher {
 public:
  using Clock = std::chrono::steady_clock;
  Launcher();
  ~Launcher();  // stops every worker
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // The workers wanted now: new ones start, changed ones restart, the rest
  // are stopped (this call waits for them to exit, up to the grace) — or,
  // with `keep_missing`, left running and returned by name, for retire()
  // once their requests have drained.
  std::vector<std::string> setWorkers(std::vector<WorkerSpec> specs, bool keep_missing = false);
  // Stops these workers (waits for them, up to the grace).
  void retire(const std::vector<std::string>& names);
  std::vector<WorkerState> states() const;
  // Grace between SIGTERM and SIGKILL when stopping. Default 5 s.
  void setStopGrace(std::chrono::milliseconds grace);

  // A free port on 127.0.0.1 for a worker, below the kernel's ephemeral
  // range (so no outgoing connection takes it before the worker binds it),
  // never the same twice in this process; 0 when none is free.
  static uint16_t freePort();

 private:
  struct Worker {
    WorkerSpec spec;
    std::string state = "starting";
    pid_t pid = 0;
    uint32_t restarts = 0;
    std::string last_error;
    Clock::time_point started{}, healthy_since{}, next_restart{}, last_probe{};
    std::chrono::milliseconds backoff{0};
  };
  void run();
  void spawn(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void reap(Worker& w, int status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void stopProcesses(const std::vector<pid_t>& pids);  // without mu_

  mutable common::Mutex mu_;
  common::CondVar cv_;
  std::map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);  // by name
  std::chrono::milliseconds grace_ ABSL_GUARDED_BY(mu_){5000};
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace spillway::gpu
