// The MIG layout planner: given GPUs and a demand mix (per model and
// priority class: memory per replica, share of the traffic), proposes
// layouts that keep every placement rule, scores them, and finds its
// score's optimum exactly.
//
// The model (docs/gpu.md): each instance serves one demand whose replica
// fits its memory, with capacity proportional to its compute slices. A
// layout's
//   balance  = min over demands of (its share of the compute slices) /
//              (its share of the traffic)   — 1 is proportional, capped at 1
//   penalty  = per GPU, wasted memory (memory not in an instance, in a spare
//              instance, or above the replica's need) / GPU memory
//              + unused compute slices / 7
//              + 0.001 per kind of instance beyond the first (ties go to
//                the simpler layout)
//   score    = balance - 0.05 x mean penalty over GPUs
// Search: every valid placed layout of each GPU model (+me profiles left
// out: serving needs no media engines) with every assignment of its
// instances to demands, collapsed to distinct capacity vectors; then a
// dynamic programme over the GPUs whose state is the capacity per demand,
// each clipped at ceil(share x total slices) — beyond that a demand never
// holds the minimum, so clipping keeps the optimum — keeping the least
// penalty per state. It never applies anything: commands are printed for
// an operator. Standard C++ only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gpu/catalog.h"
#include "gpu/layout.h"

namespace spillway::gpu {

struct Demand {
  std::string name;
  std::string priority = "standard";  // critical, standard, sheddable
  double memory_gb = 0;
  double share = 1;
};

struct PlannedInstance {
  PlacedInstance at;
  int demand = -1;  // index into the plan's demands; -1 spare
};

struct PlannedGpu {
  const GpuModel* model = nullptr;
  std::vector<PlannedInstance> instances;  // by start
};

struct Layout {
  double score = 0;
  double balance = 0;
  double penalty = 0;           // summed over GPUs
  double wasted_memory_gb = 0;
  int unused_compute = 0;
  std::vector<PlannedGpu> gpus;
  std::vector<int> capacity;    // compute slices per demand
  std::vector<int> instances;   // instances per demand
};

struct Plan {
  std::vector<Demand> demands;  // shares normalised to sum to 1
  std::vector<Layout> layouts;  // best first, distinct capacity splits
  std::string error;            // e.g. a replica larger than any instance
  double elapsed_ms = 0;
};

Plan plan(const std::vector<const GpuModel*>& gpus, std::vector<Demand> demands, int alternatives = 3);

// The score of a layout, recomputed from its parts (tests check the
// planner against it and against brute force).
double scoreOf(const std::vector<Demand>& demands, const Layout& layout);

// Text for operators: each layout's GPUs, capacity per demand, the
// nvidia-smi commands, the mig-parted config and the gpu section for a
// declared inventory with its placement.
std::string nvidiaSmiCommands(const Layout& layout);
std::string migPartedConfig(const Layout& layout);
std::string placementYaml(const std::vector<Demand>& demands, const Layout& layout);
std::string formatPlan(const Plan& plan);

// Command-line forms (spillctl gpu plan, spillwayd gpu plan):
//   --demand NAME:PRIORITY:MEMORY_GB:SHARE   e.g. chat:critical:10:0.3
//   --gpu MODEL[xCOUNT]                      e.g. A100-80GB, H100-80GBx8
// Each returns "" or what is wrong with the text.
std::string parseDemand(std::string_view text, Demand& out);
std::string parseGpus(std::string_view text, std::string& model, uint32_t& count);

}  // namespace spillway::gpu
