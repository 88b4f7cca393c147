// What the engine knows about the machine's GPUs: one shape for every
// source (NVML, the text of `nvidia-smi -L`, a declared inventory).
// Standard C++ only (the standalone probe prints it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spillway::gpu {

inline constexpr uint32_t kUnknownStart = 0xffffffffu;

struct MigDevice {
  std::string uuid;               // MIG-...
  // A number for the instance that stays while it exists (worker names use
  // it): declared, its position; NVML and old nvidia-smi, the GPU instance
  // id; new nvidia-smi, its device index.
  uint32_t slot = 0;
  uint32_t gpu_instance_id = 0;
  uint32_t compute_instance_id = 0;
  std::string profile;            // "1g.10gb" ("" when unknown)
  uint32_t profile_id = 0;        // nvidia-smi -cgi id
  uint32_t start = kUnknownStart; // first memory slice
  int memory_slices = 0;
  int compute_slices = 0;
  uint64_t memory_bytes = 0;
  int sm_count = 0;
};

struct GpuDevice {
  uint32_t index = 0;
  std::string name;               // as the driver names it ("NVIDIA A100-SXM4-80GB")
  std::string uuid;               // GPU-...
  std::string model;              // catalog model, "" when not in the catalog
  uint64_t memory_total_bytes = 0;
  uint64_t memory_used_bytes = 0;
  double utilization = -1;        // 0..1, -1 unknown
  double temperature_c = -1;
  double power_watts = -1;
  bool mig_enabled = false;
  bool mig_pending = false;       // pending mode differs from the current one
  std::vector<MigDevice> mig;
};

struct Inventory {
  std::string source;             // nvml, nvidia_smi, declared, none
  std::string detail;             // driver version, or why a source was not used
  std::vector<GpuDevice> gpus;
};

}  // namespace spillway::gpu
