#include "gpu/nvml.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "gpu/catalog.h"
#include "gpu/nvml_abi.h"

namespace spillway::gpu {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;
constexpr nvmlReturn_t NVML_ERROR_NOT_FOUND = 6;
constexpr unsigned kProfileCount = 10;  // NVML_GPU_INSTANCE_PROFILE_1_SLICE .. _1_SLICE_REV2

}  // namespace

struct Nvml::Api {
  decltype(&nvmlInit_v2) init = nullptr;
  decltype(&nvmlShutdown) shutdown = nullptr;
  decltype(&nvmlErrorString) errorString = nullptr;
  decltype(&nvmlSystemGetDriverVersion) driverVersion = nullptr;
  decltype(&nvmlDeviceGetCount_v2) count = nullptr;
  decltype(&nvmlDeviceGetHandleByIndex_v2) byIndex = nullptr;
  decltype(&nvmlDeviceGetName) name = nullptr;
  decltype(&nvmlDeviceGetUUID) uuid = nullptr;
  decltype(&nvmlDeviceGetMemoryInfo) memory = nullptr;
  decltype(&nvmlDeviceGetUtilizationRates) utilization = nullptr;
  decltype(&nvmlDeviceGetTemperature) temperature = nullptr;
  decltype(&nvmlDeviceGetPowerUsage) power = nullptr;
  decltype(&nvmlDeviceGetMigMode) migMode = nullptr;
  decltype(&nvmlDeviceGetMaxMigDeviceCount) maxMig = nullptr;
  decltype(&nvmlDeviceGetMigDeviceHandleByIndex) migByIndex = nullptr;
  decltype(&nvmlDeviceGetGpuInstanceId) giId = nullptr;
  decltype(&nvmlDeviceGetComputeInstanceId) ciId = nullptr;
  decltype(&nvmlDeviceGetAttributes_v2) attributes = nullptr;  // or nvmlDeviceGetAttributes, the same ABI
  decltype(&nvmlDeviceGetGpuInstanceProfileInfo) profileInfo = nullptr;
  decltype(&nvmlDeviceGetGpuInstancePossiblePlacements_v2) placements = nullptr;

  std::string why(const char* call, nvmlReturn_t r) const {
    std::string text = errorString ? errorString(r) : ("error " + std::to_string(r));
    return std::string(call) + ": " + text;
  }
};

Nvml::Nvml(const std::string& library) : api_(std::make_unique<Api>()) {
  handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    error_ = library + " not found (no NVIDIA driver on this machine)";
    return;
  }
  Api& a = *api_;
  auto need = [&](auto& fn, const char* sym) {
    if (!error_.empty()) return;
    void* p = dlsym(handle_, sym);
    if (!p) {
      error_ = library + ": missing symbol " + sym + " (driver too old?)";
      return;
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
  // Optional ones stay null: their fields read as unknown.
  auto want = [&](auto& fn, const char* sym) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle_, sym));
  };
  need(a.init, "nvmlInit_v2");
  need(a.shutdown, "nvmlShutdown");
  need(a.count, "nvmlDeviceGetCount_v2");
  need(a.byIndex, "nvmlDeviceGetHandleByIndex_v2");
  need(a.name, "nvmlDeviceGetName");
  need(a.uuid, "nvmlDeviceGetUUID");
  need(a.memory, "nvmlDeviceGetMemoryInfo");
  if (!error_.empty()) return;
  want(a.errorString, "nvmlErrorString");
  want(a.driverVersion, "nvmlSystemGetDriverVersion");
  want(a.utilization, "nvmlDeviceGetUtilizationRates");
  want(a.temperature, "nvmlDeviceGetTemperature");
  want(a.power, "nvmlDeviceGetPowerUsage");
  want(a.migMode, "nvmlDeviceGetMigMode");
  want(a.maxMig, "nvmlDeviceGetMaxMigDeviceCount");
  want(a.migByIndex, "nvmlDeviceGetMigDeviceHandleByIndex");
  want(a.giId, "nvmlDeviceGetGpuInstanceId");
  want(a.ciId, "nvmlDeviceGetComputeInstanceId");
  want(a.attributes, "nvmlDeviceGetAttributes_v2");
  if (!a.attributes) want(a.attributes, "nvmlDeviceGetAttributes");
  want(a.profileInfo, "nvmlDeviceGetGpuInstanceProfileInfo");
  want(a.placements, "nvmlDeviceGetGpuInstancePossiblePlacements_v2");
  if (nvmlReturn_t r = a.init(); r != NVML_SUCCESS) {
    error_ = a.why("nvmlInit", r);
    return;
  }
  initialised_ = true;
  if (a.driverVersion) {
    char buf[96] = {};
    if (a.driverVersion(buf, sizeof buf) == NVML_SUCCESS) driver_ = buf;
  }
}

Nvml::~Nvml() {
  if (initialised_ && api_->shutdown) api_->shutdown();
  if (handle_) dlclose(handle_);
}

Inventory Nvml::read() {
  Inventory inv;
  inv.source = "nvml";
  if (!ok()) {
    inv.source = "none";
    inv.detail = error_;
    return inv;
  }
  Api& a = *api_;
  inv.detail = driver_.empty() ? "" : "driver " + driver_;
  auto note = [&](const std::string& s) { inv.detail += (inv.detail.empty() ? "" : "; ") + s; };
  unsigned count = 0;
  if (nvmlReturn_t r = a.count(&count); r != NVML_SUCCESS) {
    note(a.why("nvmlDeviceGetCount", r));
    return inv;
  }
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (nvmlReturn_t r = a.byIndex(i, &dev); r != NVML_SUCCESS) {
      note("GPU " + std::to_string(i) + ": " + a.why("nvmlDeviceGetHandleByIndex", r));
      continue;
    }
    GpuDevice g;
    g.index = i;
    char buf[128] = {};
    if (a.name(dev, buf, sizeof buf) == NVML_SUCCESS) g.name = buf;
    std::memset(buf, 0, sizeof buf);
    if (a.uuid(dev, buf, sizeof buf) == NVML_SUCCESS) g.uuid = buf;
    nvmlMemory_t mem{};
    if (a.memory(dev, &mem) == NVML_SUCCESS) {
      g.memory_total_bytes = mem.total;
      g.memory_used_bytes = mem.used;
    }
    nvmlUtilization_t util{};
    if (a.utilization && a.utilization(dev, &util) == NVML_SUCCESS) g.utilization = util.gpu / 100.0;
    unsigned temp = 0;
    if (a.temperature && a.temperature(dev, 0 /* NVML_TEMPERATURE_GPU */, &temp) == NVML_SUCCESS) g.temperature_c = temp;
    unsigned mw = 0;
    if (a.power && a.power(dev, &mw) == NVML_SUCCESS) g.power_watts = mw / 1000.0;
    if (const GpuModel* m = findModel(g.name, g.memory_total_bytes)) g.model = m->name;
    unsigned current = 0, pending = 0;
    if (a.migMode && a.migMode(dev, &current, &pending) == NVML_SUCCESS) {
      g.mig_enabled = current == 1;
      g.mig_pending = pending != current;
    }
    unsigned max_mig = 0;
    if (g.mig_enabled && a.maxMig && a.migByIndex && a.maxMig(dev, &max_mig) == NVML_SUCCESS) {
      const GpuModel* model = findModel(g.model);
      for (unsigned k = 0; k < max_mig; ++k) {
        nvmlDevice_t mdev = nullptr;
        const nvmlReturn_t r = a.migByIndex(dev, k, &mdev);
        if (r == NVML_ERROR_NOT_FOUND) continue;  // a hole: no device at this index
        if (r != NVML_SUCCESS) {
          note("GPU " + std::to_string(i) + " MIG " + std::to_string(k) + ": " + a.why("nvmlDeviceGetMigDeviceHandleByIndex", r));
          continue;
        }
        MigDevice m;
        std::memset(buf, 0, sizeof buf);
        if (a.uuid(mdev, buf, sizeof buf) == NVML_SUCCESS) m.uuid = buf;
        if (a.giId) a.giId(mdev, &m.gpu_instance_id);
        m.slot = a.giId ? m.gpu_instance_id : k;
        if (a.ciId) a.ciId(mdev, &m.compute_instance_id);
        // The profile: the name's last word ("NVIDIA A100-SXM4-80GB MIG 1g.10gb"),
        // else from the slice counts and memory.
        std::memset(buf, 0, sizeof buf);
        if (a.name(mdev, buf, sizeof buf) == NVML_SUCCESS) {
          std::string n = buf;
          const size_t sp = n.rfind(' ');
          if (n.find(" MIG ") != std::string::npos && sp != std::string::npos) m.profile = n.substr(sp + 1);
        }
        nvmlDeviceAttributes_t attr{};
        if (a.attributes && a.attributes(mdev, &attr) == NVML_SUCCESS) {
          m.sm_count = static_cast<int>(attr.multiprocessorCount);
          m.compute_slices = static_cast<int>(attr.gpuInstanceSliceCount);
          m.memory_bytes = attr.memorySizeMB * 1024ull * 1024;
        }
        if (model) {
          const Profile* p = m.profile.empty() ? nullptr : model->profile(m.profile);
          if (!p) {
            for (const auto& q : model->profiles) {
              if (q.compute_slices == m.compute_slices && !q.media &&
                  q.memory_gb * 1024 >= static_cast<double>(m.memory_bytes >> 20) * 0.9 &&
                  q.memory_gb * 1024 <= static_cast<double>(m.memory_bytes >> 20) * 1.2) {
                p = &q;
                break;
              }
            }
          }
          if (p) {
            m.profile = p->name;
            m.profile_id = p->id;
            m.memory_slices = p->memory_slices;
            if (m.compute_slices == 0) m.compute_slices = p->compute_slices;
          }
        }
        g.mig.push_back(std::move(m));
      }
    }
    inv.gpus.push_back(std::move(g));
  }
  return inv;
}

std::vector<std::string> catalogMismatches(const GpuModel& model, const std::vector<DriverProfile>& driver) {
  std::vector<std::string> out;
  for (const auto& d : driver) {
    if (!d.supported) continue;
    const Profile* p = model.profileById(d.id);
    const std::string at = "profile id " + std::to_string(d.id);
    if (!p) {
      out.push_back(at + ": not in the catalog");
      continue;
    }
    if (static_cast<int>(d.slice_count) != p->compute_slices)
      out.push_back(at + " (" + p->name + "): slices " + std::to_string(d.slice_count) + " vs " + std::to_string(p->compute_slices));
    if (static_cast<int>(d.instance_count) != p->max_instances)
      out.push_back(at + " (" + p->name + "): instances " + std::to_string(d.instance_count) + " vs " + std::to_string(p->max_instances));
    if (static_cast<int>(d.sm_count) != p->sm_count)
      out.push_back(at + " (" + p->name + "): SMs " + std::to_string(d.sm_count) + " vs " + std::to_string(p->sm_count));
    const double gb = static_cast<double>(d.memory_mb) / 1024.0;
    if (std::fabs(gb - p->memory_gb) > 0.1 * p->memory_gb + 1)
      out.push_back(at + " (" + p->name + "): memory " + num(gb) + " GB vs " + num(p->memory_gb));
    if (!d.starts.empty()) {
      std::vector<int> starts(d.starts.begin(), d.starts.end());
      if (starts != p->starts) {
        std::string s;
        for (int v : starts) s += (s.empty() ? "" : ",") + std::to_string(v);
        out.push_back(at + " (" + p->name + "): placements " + s);
      }
    }
  }
  for (const auto& p : model.profiles) {
    bool seen = false;
    for (const auto& d : driver) seen = seen || (d.supported && d.id == p.id);
    if (!seen && !driver.empty()) out.push_back(p.name + " (id " + std::to_string(p.id) + "): the driver does not offer it");
  }
  return out;
}

std::vector<DriverProfile> Nvml::profiles(uint32_t index) {
  std::vector<DriverProfile> out;
  if (!ok() || !api_->profileInfo) return out;
  Api& a = *api_;
  nvmlDevice_t dev = nullptr;
  if (a.byIndex(index, &dev) != NVML_SUCCESS) return out;
  for (unsigned k = 0; k < kProfileCount; ++k) {
    DriverProfile p;
    p.nvml_index = k;
    nvmlGpuInstanceProfileInfo_t info{};
    const nvmlReturn_t r = a.profileInfo(dev, k, &info);
    if (r != NVML_SUCCESS) {
      if (r != NVML_ERROR_NOT_SUPPORTED) p.error = a.why("nvmlDeviceGetGpuInstanceProfileInfo", r);
      out.push_back(std::move(p));
      continue;
    }
    p.supported = true;
    p.id = info.id;
    p.slice_count = info.sliceCount;
    p.instance_count = info.instanceCount;
    p.sm_count = info.multiprocessorCount;
    p.memory_mb = info.memorySizeMB;
    if (a.placements) {
      nvmlGpuInstancePlacement_t pl[16] = {};
      unsigned n = 16;
      if (a.placements(dev, info.id, pl, &n) == NVML_SUCCESS) {
        for (unsigned j = 0; j < n && j < 16; ++j) p.starts.push_back(pl[j].start);
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace spillway::gpu
