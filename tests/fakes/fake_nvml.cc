// A fake libnvidia-ml.so.1 for tests: the NVML symbols Spillway reads, with
// scripted answers chosen by FAKE_NVML_MODE at nvmlInit:
//   a100_mig       one A100-SXM4-80GB, MIG on, a 3g.40gb and two 1g.10gb
//                  devices (index 1 is a hole), profile table as NVIDIA's
//   not_supported  one H100, MIG NOT_SUPPORTED, no utilisation, temperature
//                  or power (NOT_SUPPORTED), no profiles
//   init_fails     nvmlInit answers DRIVER_NOT_LOADED
// Built twice: FAKE_NVML_PARTIAL leaves out nvmlDeviceGetMemoryInfo (a
// required symbol), for the missing-symbol path.
#include <cstdlib>
#include <cstring>
#include <string>

#include "gpu/nvml_abi.h"

namespace {

struct Dev {
  int gpu;  // index
  int mig;  // -1: the GPU itself
};
Dev devices[8];
std::string mode;

int copy(char* out, unsigned len, const std::string& s) {
  if (len <= s.size()) return 7;  // INSUFFICIENT_SIZE
  std::memcpy(out, s.c_str(), s.size() + 1);
  return 0;
}

Dev* dev(nvmlDevice_t h) { return reinterpret_cast<Dev*>(h); }
nvmlDevice_t handle(Dev* d) { return reinterpret_cast<nvmlDevice_t>(d); }

// The MIG devices of a100_mig: (index, gi, profile name, slices, memory MB, SMs).
struct Mig {
  unsigned index, gi;
  const char* profile;
  unsigned slices;
  unsigned long long mb;
  unsigned sms;
};
const Mig migs[] = {{0, 1, "3g.40gb", 3, 40192, 42}, {2, 5, "1g.10gb", 1, 9856, 14}, {3, 6, "1g.10gb", 1, 9856, 14}};

}  // namespace

extern "C" {

nvmlReturn_t nvmlInit_v2() {
  const char* m = std::getenv("FAKE_NVML_MODE");
  mode = m ? m : "a100_mig";
  if (mode == "init_fails") return 9;  // DRIVER_NOT_LOADED
  for (int i = 0; i < 8; ++i) devices[i] = {0, i == 0 ? -1 : i - 1};
  return 0;
}
nvmlReturn_t nvmlShutdown() { return 0; }
const char* nvmlErrorString(nvmlReturn_t r) { return r == 9 ? "Driver Not Loaded" : r == 3 ? "Not Supported" : "Unknown Error"; }
nvmlReturn_t nvmlSystemGetDriverVersion(char* out, unsigned len) { return copy(out, len, "550.54.15"); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned* n) {
  *n = 1;
  return 0;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t* h) {
  if (i != 0) return 2;  // INVALID_ARGUMENT
  *h = handle(&devices[0]);
  return 0;
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t h, char* out, unsigned len) {
  const bool h100 = mode == "not_supported";
  if (dev(h)->mig < 0) return copy(out, len, h100 ? "NVIDIA H100 80GB HBM3" : "NVIDIA A100-SXM4-80GB");
  return copy(out, len, std::string("NVIDIA A100-SXM4-80GB MIG ") + migs[dev(h)->mig].profile);
}
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t h, char* out, unsigned len) {
  if (dev(h)->mig < 0) return copy(out, len, "GPU-fake-0000");
  return copy(out, len, "MIG-fake-" + std::to_string(dev(h)->mig));
}
#ifndef FAKE_NVML_PARTIAL
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t, nvmlMemory_t* m) {
  m->total = 81920ull << 20;
  m->used = 1024ull << 20;
  m->free = m->total - m->used;
  return 0;
}
#endif
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t, nvmlUtilization_t* u) {
  if (mode == "not_supported") return 3;
  u->gpu = 37;
  u->memory = 12;
  return 0;
}
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t, int, unsigned* t) {
  if (mode == "not_supported") return 3;
  *t = 41;
  return 0;
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t, unsigned* mw) {
  if (mode == "not_supported") return 3;
  *mw = 87500;
  return 0;
}
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t, unsigned* current, unsigned* pending) {
  if (mode == "not_supported") return 3;
  *current = 1;
  *pending = 1;
  return 0;
}
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t, unsigned* n) {
  *n = 7;
  return 0;
}
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t, unsigned index, nvmlDevice_t* h) {
  for (int k = 0; k < 3; ++k) {
    if (migs[k].index == index) {
      *h = handle(&devices[k + 1]);
      return 0;
    }
  }
  return 6;  // NOT_FOUND: a hole
}
nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t h, unsigned* id) {
  *id = migs[dev(h)->mig].gi;
  return 0;
}
nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t, unsigned* id) {
  *id = 0;
  return 0;
}
nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t h, nvmlDeviceAttributes_t* a) {
  const Mig& m = migs[dev(h)->mig];
  std::memset(a, 0, sizeof *a);
  a->multiprocessorCount = m.sms;
  a->gpuInstanceSliceCount = m.slices;
  a->computeInstanceSliceCount = m.slices;
  a->memorySizeMB = m.mb;
  return 0;
}
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t, unsigned profile, nvmlGpuInstanceProfileInfo_t* info) {
  if (mode == "not_supported") return 3;
  // NVML profile index -> (id, slices, instances, SMs, MB) for an A100-80GB.
  struct Row {
    unsigned index, id, slices, count, sms;
    unsigned long long mb;
  };
  static const Row rows[] = {{0, 19, 1, 7, 14, 9856},  {1, 14, 2, 3, 28, 19968}, {2, 9, 3, 2, 42, 40192},
                             {3, 5, 4, 1, 56, 40192},  {4, 0, 7, 1, 98, 80384},  {7, 20, 1, 1, 14, 9856},
                             {9, 15, 1, 4, 14, 19968}};
  for (const auto& r : rows) {
    if (r.index != profile) continue;
    std::memset(info, 0, sizeof *info);
    info->id = r.id;
    info->sliceCount = r.slices;
    info->instanceCount = r.count;
    info->multiprocessorCount = r.sms;
    info->memorySizeMB = r.mb;
    return 0;
  }
  return 3;
}
nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(nvmlDevice_t, unsigned id, nvmlGpuInstancePlacement_t* out, unsigned* n) {
  std::string starts;
  switch (id) {
    case 19: case 20: starts = "0123456"; break;
    case 15: starts = "0246"; break;
    case 14: starts = "024"; break;
    case 9: starts = "04"; break;
    default: starts = "0";
  }
  if (*n < starts.size()) return 7;
  *n = static_cast<unsigned>(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) out[i] = {static_cast<unsigned>(starts[i] - '0'), 1};
  return 0;
}

}  // extern "C"
