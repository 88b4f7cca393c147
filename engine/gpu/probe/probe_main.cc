// spillway-gpu-probe: what this machine's NVIDIA driver says about its GPUs
// (NVML, loaded at run time), the MIG profile table checked against
// Spillway's catalog, `nvidia-smi -L` as the parser reads it, and — built
// with the CUDA toolkit — a short device check. Read only: it changes no
// GPU setting. `--json` prints one JSON object (recorded as a test
// fixture); otherwise a summary.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gpu/catalog.h"
#include "gpu/nvml.h"
#include "gpu/smi_parser.h"
#ifdef SPILLWAY_WITH_CUDA
#include "cuda_probe.h"
#endif

using namespace spillway::gpu;

namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) >= 0x20) {
      out += c;
    }
  }
  return out + "\"";
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string inventoryJson(const Inventory& inv) {
  std::string out = "{\"source\":" + quote(inv.source) + ",\"detail\":" + quote(inv.detail) + ",\"gpus\":[";
  for (size_t i = 0; i < inv.gpus.size(); ++i) {
    const auto& g = inv.gpus[i];
    out += (i ? "," : "") + std::string("{\"index\":") + std::to_string(g.index) + ",\"name\":" + quote(g.name) +
           ",\"uuid\":" + quote(g.uuid) + ",\"model\":" + quote(g.model) +
           ",\"memory_total_bytes\":" + std::to_string(g.memory_total_bytes) +
           ",\"memory_used_bytes\":" + std::to_string(g.memory_used_bytes) + ",\"utilization\":" + num(g.utilization) +
           ",\"temperature_c\":" + num(g.temperature_c) + ",\"power_watts\":" + num(g.power_watts) +
           ",\"mig_enabled\":" + (g.mig_enabled ? "true" : "false") +
           ",\"mig_pending\":" + (g.mig_pending ? "true" : "false") + ",\"mig\":[";
    for (size_t k = 0; k < g.mig.size(); ++k) {
      const auto& m = g.mig[k];
      out += (k ? "," : "") + std::string("{\"uuid\":") + quote(m.uuid) + ",\"slot\":" + std::to_string(m.slot) +
             ",\"gi\":" + std::to_string(m.gpu_instance_id) +
             ",\"ci\":" + std::to_string(m.compute_instance_id) + ",\"profile\":" + quote(m.profile) +
             ",\"sm_count\":" + std::to_string(m.sm_count) + ",\"memory_bytes\":" + std::to_string(m.memory_bytes) + "}";
    }
    out += "]}";
  }
  return out + "]}";
}

std::string run(const char* cmd, int& rc) {
  std::string text;
  FILE* f = popen(cmd, "r");
  if (!f) {
    rc = -1;
    return text;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  rc = pclose(f);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false, cuda = true;
  std::string library = "libnvidia-ml.so.1";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") json = true;
    else if (a == "--no-cuda") cuda = false;
    else if (a == "--nvml-library" && i + 1 < argc) library = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: spillway-gpu-probe [--json] [--no-cuda] [--nvml-library PATH]\n"
                   "Reads the GPUs through NVML and nvidia-smi -L, checks the MIG catalog, runs the CUDA check.\n"
                   "Read only: changes no GPU setting.\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  Nvml nvml(library);
  const Inventory inv = nvml.read();
  std::string profiles = "[", checks = "[";
  std::string text;
  for (size_t i = 0; i < inv.gpus.size(); ++i) {
    const auto& g = inv.gpus[i];
    const auto driver = nvml.profiles(g.index);
    profiles += (i ? "," : "") + std::string("{\"gpu\":") + std::to_string(g.index) + ",\"profiles\":[";
    for (size_t k = 0; k < driver.size(); ++k) {
      const auto& d = driver[k];
      std::string starts;
      for (uint32_t s : d.starts) starts += (starts.empty() ? "" : ",") + std::to_string(s);
      profiles += (k ? "," : "") + std::string("{\"nvml_index\":") + std::to_string(d.nvml_index) +
                  ",\"supported\":" + (d.supported ? "true" : "false") + ",\"id\":" + std::to_string(d.id) +
                  ",\"slice_count\":" + std::to_string(d.slice_count) + ",\"instance_count\":" +
                  std::to_string(d.instance_count) + ",\"sm_count\":" + std::to_string(d.sm_count) +
                  ",\"memory_mb\":" + std::to_string(d.memory_mb) + ",\"starts\":[" + starts + "],\"error\":" +
                  quote(d.error) + "}";
    }
    profiles += "]}";
    const GpuModel* model = findModel(g.model);
    std::vector<std::string> diffs = model ? catalogMismatches(*model, driver) : std::vector<std::string>{"model not in the catalog"};
    checks += (i ? "," : "") + std::string("{\"gpu\":") + std::to_string(g.index) + ",\"model\":" + quote(g.model) +
              ",\"mismatches\":[";
    for (size_t k = 0; k < diffs.size(); ++k) checks += (k ? "," : "") + quote(diffs[k]);
    checks += "]}";
    text += "GPU " + std::to_string(g.index) + ": " + g.name + " (" + (g.model.empty() ? "not in catalog" : g.model) +
            "), MIG " + (g.mig_enabled ? "on" : "off") + ", catalog check: " +
            (diffs.empty() ? "matches" : std::to_string(diffs.size()) + " differences") + "\n";
    for (const auto& d : diffs) text += "  " + d + "\n";
  }
  profiles += "]";
  checks += "]";
  int rc = 0;
  const std::string smi = run("nvidia-smi -L 2>&1", rc);
  const SmiParse parsed = parseNvidiaSmiList(rc == 0 ? smi : "");
  std::string cuda_json = "null";
#ifdef SPILLWAY_WITH_CUDA
  if (cuda) cuda_json = cudaProbeJson();
#else
  (void)cuda;
#endif
  if (json) {
    std::printf("{\"nvml\":{\"ok\":%s,\"error\":%s,\"driver\":%s,\"inventory\":%s,\"profiles\":%s,\"catalog_check\":%s},"
                "\"nvidia_smi_L\":{\"status\":%d,\"text\":%s,\"parse_error\":%s,\"parsed\":%s},\"cuda\":%s}\n",
                nvml.ok() ? "true" : "false", quote(nvml.error()).c_str(), quote(nvml.driverVersion()).c_str(),
                inventoryJson(inv).c_str(), profiles.c_str(), checks.c_str(), rc, quote(smi).c_str(),
                quote(parsed.error).c_str(), inventoryJson(parsed.inventory).c_str(), cuda_json.c_str());
    return 0;
  }
  if (!nvml.ok()) std::printf("NVML: %s\n", nvml.error().c_str());
  else std::printf("NVML: driver %s, %zu GPU(s)\n%s", nvml.driverVersion().c_str(), inv.gpus.size(), text.c_str());
  std::printf("nvidia-smi -L: %s\n", rc == 0 ? (parsed.error.empty() ? "parsed" : parsed.error.c_str()) : "not available");
  std::printf("CUDA check: %s\n", cuda_json == "null" ? "not built (no CUDA toolkit) or --no-cuda" : cuda_json.c_str());
  return 0;
}
