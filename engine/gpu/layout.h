// A GPU's MIG layout: instances at their memory-slice positions, and the
// placement rules every layout must keep (a profile starts only where the
// catalog allows, memory slices never overlap, at most 7 compute slices,
// per-profile instance limits, at most one +me). Standard C++ only.
#pragma once

#include <string>
#include <vector>

#include "gpu/catalog.h"

namespace spillway::gpu {

struct PlacedInstance {
  const Profile* profile = nullptr;
  int start = 0;  // first memory slice
};

// "" when `layout` keeps every rule on `model`, else what it breaks.
std::string checkLayout(const GpuModel& model, const std::vector<PlacedInstance>& layout);

// Places `profiles` (names) in order, each at the first free position its
// profile allows. Error text (naming the profile that does not fit) when
// one cannot be placed or breaks a rule.
struct FirstFit {
  std::vector<PlacedInstance> layout;
  std::string error;
};
FirstFit placeFirstFit(const GpuModel& model, const std::vector<std::string>& profiles);

// The nvidia-smi command that creates `layout` on GPU `index`: larger
// instances first (nvidia-smi places each at the first position free for
// it, so that order reproduces the plan), each with its compute instance.
std::string createCommand(int index, const std::vector<PlacedInstance>& layout);

}  // namespace spillway::gpu
