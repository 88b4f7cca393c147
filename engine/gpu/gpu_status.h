// The GPU view as the engine reports it: GPUs with their MIG instances,
// what runs on each (backends, classes, load) and the launched workers.
// Plain data, light to include (engine.h, the control plane, the console).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gpu/inventory.h"

namespace spillway::gpu {

struct WorkerState {
  std::string name;
  std::string instance;
  std::string state;       // starting, healthy, unhealthy, exited, stopped
  pid_t pid = 0;
  uint16_t port = 0;
  uint32_t restarts = 0;
  std::string last_error;
  int64_t next_restart_ms = 0;  // wall clock, while backing off
};

// A backend as the GPU view needs it (the engine fills these from its
// routing table).
struct BoundBackend {
  std::string name;
  std::string gpu;                   // its `gpu` field
  int64_t in_flight = 0;
  int64_t capacity = 0;              // its concurrency limit; 0 none known
  int64_t queued = 0;                // requests waiting in queues that may place on it
  std::vector<std::string> classes;  // priority classes placed on it ("long" too)
};

struct InstanceStatus {
  MigDevice mig;
  std::vector<std::string> backends;
  std::vector<std::string> classes;
  int64_t in_flight = 0, capacity = 0, queued = 0;
  double utilization = -1;
};

struct GpuStatus {
  struct Gpu {
    GpuDevice device;                  // `mig` left empty: see instances
    std::vector<InstanceStatus> instances;
    std::vector<std::string> backends;  // bound to the whole GPU
    int64_t in_flight = 0, capacity = 0, queued = 0;
  };
  std::string source, detail;
  int64_t read_ms = 0;
  std::vector<Gpu> gpus;
  std::vector<WorkerState> workers;
};

}  // namespace spillway::gpu
