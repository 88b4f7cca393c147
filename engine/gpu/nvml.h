// The NVIDIA Management Library, loaded at run time with
// dlopen("libnvidia-ml.so.1"): the same binary runs where there is no GPU or
// no driver, and says so. Reads GPUs (name, UUID, memory, utilisation,
// temperature, power), MIG mode (current and pending) and MIG devices
// (UUID, GPU and compute instance ids, profile, memory, SMs), and the
// driver's own MIG profile table for checking the catalog. Read only:
// nothing here changes a GPU's settings.
//
// Standard C++ and libdl only: the standalone probe builds it on a GPU
// machine that has none of the project's other dependencies.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpu/inventory.h"

namespace spillway::gpu {

// One GPU instance profile as the driver describes it.
struct DriverProfile {
  uint32_t nvml_index = 0;    // NVML_GPU_INSTANCE_PROFILE_* asked for
  bool supported = false;     // false: NOT_SUPPORTED (or another error, in `error`)
  uint32_t id = 0;
  uint32_t slice_count = 0;   // compute slices
  uint32_t instance_count = 0;
  uint32_t sm_count = 0;
  uint64_t memory_mb = 0;
  std::vector<uint32_t> starts;  // possible placements (memory slice), when readable
  std::string error;
};

struct GpuModel;
// Where the driver's profile table (`driver`, from Nvml::profiles) and the
// catalog's `model` disagree, one line each; empty when they agree.
std::vector<std::string> catalogMismatches(const GpuModel& model, const std::vector<DriverProfile>& driver);

class Nvml {
 public:
  // Loads `library` (default: the driver's libnvidia-ml.so.1) and calls
  // nvmlInit. Never throws; check ok() / error().
  explicit Nvml(const std::string& library = "libnvidia-ml.so.1");
  ~Nvml();  // nvmlShutdown, dlclose
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  bool ok() const { return error_.empty(); }
  // Why NVML is unusable: "libnvidia-ml.so.1 not found (no NVIDIA driver)",
  // "missing symbol nvmlInit_v2", "nvmlInit: Driver Not Loaded".
  const std::string& error() const { return error_; }
  const std::string& driverVersion() const { return driver_; }

  // Every GPU with its MIG devices. Fields the driver does not support
  // stay unknown (-1 / empty); a GPU that fails to answer is skipped with a
  // note in `detail`.
  Inventory read();
  // The driver's MIG profiles for GPU `index` (every NVML profile index).
  std::vector<DriverProfile> profiles(uint32_t index);

  struct Api;

 private:
  std::unique_ptr<Api> api_;
  void* handle_ = nullptr;
  bool initialised_ = false;
  std::string error_;
  std::string driver_;
};

}  // namespace spillway::gpu
