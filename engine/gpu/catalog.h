// The MIG profile catalog: what each supported GPU model can be sliced
// into, as data. A GPU has 7 compute slices and 8 memory slices; a profile
// takes some of each and may start only at certain memory slices (a 3g
// takes 4 memory slices and starts at 0 or 4). The numbers are NVIDIA's
// (MIG user guide, "Supported MIG Profiles"); where a GPU is present they
// are checked against nvmlDeviceGetGpuInstanceProfileInfo and its possible
// placements (spillway-gpu-probe --check-catalog).
//
// Standard C++ only: the standalone probe (engine/gpu/probe) builds it
// with nothing but a compiler.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::gpu {

inline constexpr int kComputeSlices = 7;
inline constexpr int kMemorySlices = 8;

struct Profile {
  std::string name;          // "1g.10gb", "1g.10gb+me", "3g.40gb" ...
  uint32_t id = 0;           // nvidia-smi mig -cgi id (19, 20, 15, 14, 9, 5, 0)
  uint32_t nvml_index = 0;   // NVML_GPU_INSTANCE_PROFILE_* index it answers to
  int compute_slices = 0;
  int memory_slices = 0;
  double memory_gb = 0;      // as named
  int max_instances = 0;
  int sm_count = 0;
  bool media = false;        // +me: at most one per GPU
  std::vector<int> starts;   // memory slices it may start at
};

struct GpuModel {
  std::string name;          // catalog name: "A100-80GB"
  double memory_gb = 0;
  int sm_count = 0;          // whole GPU, MIG off
  std::vector<Profile> profiles;  // largest first
  const Profile* profile(std::string_view name) const;
  const Profile* profileById(uint32_t id) const;
};

// Every model the catalog knows.
const std::vector<GpuModel>& catalog();
// A model by catalog name ("A100-80GB", case-insensitive) or by the name
// the driver reports ("NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"),
// with the memory size to tell 40 from 80 GB where the name does not.
// Null when unknown.
const GpuModel* findModel(std::string_view name, uint64_t memory_bytes = 0);
// The catalog names, comma-separated (for error messages).
std::string modelNames();

}  // namespace spillway::gpu
