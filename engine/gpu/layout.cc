#include "gpu/layout.h"

#include <algorithm>
#include <array>
#include <map>

namespace spillway::gpu {

std::string checkLayout(const GpuModel& model, const std::vector<PlacedInstance>& layout) {
  std::array<bool, kMemorySlices> used{};
  int compute = 0;
  int media = 0;
  std::map<const Profile*, int> count;
  for (const auto& inst : layout) {
    const Profile* p = inst.profile;
    if (!p || !model.profile(p->name)) return "an instance has no profile of " + model.name;
    if (std::find(p->starts.begin(), p->starts.end(), inst.start) == p->starts.end()) {
      return p->name + " cannot start at memory slice " + std::to_string(inst.start);
    }
    for (int s = inst.start; s < inst.start + p->memory_slices; ++s) {
      if (s >= kMemorySlices || used[s]) return p->name + " at " + std::to_string(inst.start) + " overlaps another instance";
      used[s] = true;
    }
    compute += p->compute_slices;
    if (p->media) ++media;
    if (++count[p] > p->max_instances) {
      return "more than " + std::to_string(p->max_instances) + " " + p->name + " instances";
    }
  }
  if (compute > kComputeSlices) return "more than 7 compute slices (" + std::to_string(compute) + ")";
  if (media > 1) return "more than one +me instance";
  return "";
}

FirstFit placeFirstFit(const GpuModel& model, const std::vector<std::string>& profiles) {
  FirstFit out;
  for (const auto& name : profiles) {
    const Profile* p = model.profile(name);
    if (!p) {
      std::string known;
      for (const auto& q : model.profiles) known += (known.empty() ? "" : ", ") + q.name;
      out.error = "unknown MIG profile \"" + name + "\" for " + model.name + " (known: " + known + ")";
      return out;
    }
    bool placed = false;
    for (int start : p->starts) {
      auto trial = out.layout;
      trial.push_back({p, start});
      if (checkLayout(model, trial).empty()) {
        out.layout = std::move(trial);
        placed = true;
        break;
      }
    }
    if (!placed) {
      out.error = name + " does not fit on " + model.name + " after the instances before it";
      return out;
    }
  }
  return out;
}

std::string createCommand(int index, const std::vector<PlacedInstance>& layout) {
  auto sorted = layout;
  std::stable_sort(sorted.begin(), sorted.end(), [](const PlacedInstance& a, const PlacedInstance& b) {
    if (a.profile->compute_slices != b.profile->compute_slices) return a.profile->compute_slices > b.profile->compute_slices;
    if (a.profile->memory_slices != b.profile->memory_slices) return a.profile->memory_slices > b.profile->memory_slices;
    return a.start < b.start;
  });
  std::string ids;
  for (const auto& inst : sorted) {
    if (!ids.empty()) ids += ",";
    ids += std::to_string(inst.profile->id);
  }
  if (ids.empty()) return "nvidia-smi mig -i " + std::to_string(index) + " -dci && nvidia-smi mig -i " +
                          std::to_string(index) + " -dgi";
  return "nvidia-smi mig -i " + std::to_string(index) + " -cgi " + ids + " -C";
}

}  // namespace spillway::gpu
