#include "gpu/catalog.h"

#include <algorithm>
#include <cctype>

namespace spillway::gpu {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One model's profiles from its memory sizes (1g, 1g with two memory
// slices, 2g, 3g, 4g, 7g) and SM counts (1g, 2g, 3g, 4g, 7g). The slice
// geometry and placements are the same on every MIG GPU with 7 compute /
// 8 memory slices (A100, H100, H200).
GpuModel model(std::string name, double gb, int sms, const double (&mem)[6],
               const int (&sm)[5]) {
  auto fmt = [](double v) {
    std::string s = std::to_string(static_cast<int>(v));
    return s + "gb";
  };
  GpuModel m{std::move(name), gb, sms, {}};
  m.profiles = {
      {"7g." + fmt(mem[5]), 0, 0, 7, 8, mem[5], 1, sm[4], false, {0}},
      {"4g." + fmt(mem[4]), 5, 3, 4, 4, mem[4], 1, sm[3], false, {0}},
      {"3g." + fmt(mem[3]), 9, 2, 3, 4, mem[3], 2, sm[2], false, {0, 4}},
      {"2g." + fmt(mem[2]), 14, 1, 2, 2, mem[2], 3, sm[1], false, {0, 2, 4}},
      {"1g." + fmt(mem[1]), 15, 9, 1, 2, mem[1], 4, sm[0], false, {0, 2, 4, 6}},
      {"1g." + fmt(mem[0]), 19, 0, 1, 1, mem[0], 7, sm[0], false, {0, 1, 2, 3, 4, 5, 6}},
      {"1g." + fmt(mem[0]) + "+me", 20, 7, 1, 1, mem[0], 1, sm[0], true, {0, 1, 2, 3, 4, 5, 6}},
  };
  return m;
}

}  // namespace

const Profile* GpuModel::profile(std::string_view n) const {
  const std::string want = lower(n);
  for (const auto& p : profiles) {
    if (p.name == want) return &p;
  }
  return nullptr;
}

const Profile* GpuModel::profileById(uint32_t id) const {
  for (const auto& p : profiles) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const std::vector<GpuModel>& catalog() {
  // Memory per profile: 1g, 1g (2 slices), 2g, 3g, 4g, 7g; SMs: 1g, 2g, 3g, 4g, 7g.
  static const std::vector<GpuModel> models = {
      model("A100-40GB", 40, 108, {5, 10, 10, 20, 20, 40},
            {14, 28, 42, 56, 98}),
      model("A100-80GB", 80, 108, {10, 20, 20, 40, 40, 80},
            {14, 28, 42, 56, 98}),
      model("H100-80GB", 80, 132, {10, 20, 20, 40, 40, 80},
            {16, 32, 60, 64, 132}),
      model("H100-PCIE-80GB", 80, 114, {10, 20, 20, 40, 40, 80},
            {14, 28, 42, 56, 114}),
      model("H100-94GB", 94, 132, {12, 24, 24, 47, 47, 94},
            {16, 32, 60, 64, 132}),
      model("H200-141GB", 141, 132, {18, 35, 35, 71, 71, 141},
            {16, 32, 60, 64, 132}),
  };
  return models;
}

const GpuModel* findModel(std::string_view name, uint64_t memory_bytes) {
  const std::string want = lower(name);
  for (const auto& m : catalog()) {
    if (lower(m.name) == want) return &m;
  }
  // A driver name: "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "NVIDIA H200".
  std::string bare = want;
  if (bare.rfind("nvidia ", 0) == 0) bare = bare.substr(7);
  const double gb = static_cast<double>(memory_bytes) / (1024.0 * 1024 * 1024);
  const GpuModel* best = nullptr;
  int best_score = 0;
  for (const auto& m : catalog()) {
    if (bare.find(lower(m.name.substr(0, 4))) == std::string::npos) continue;  // a100, h100, h200
    // Same family: tell the variants apart by name fragments and memory.
    const bool pcie = bare.find("pcie") != std::string::npos;
    const bool nvl = bare.find("nvl") != std::string::npos || bare.find("94gb") != std::string::npos;
    int score = 1;
    if (m.name == "H100-PCIE-80GB") score = pcie ? 3 : 0;
    if (m.name == "H100-94GB") score = nvl ? 3 : 0;
    if (m.name == "H100-80GB") score = (!pcie && !nvl) ? 2 : 0;
    if (m.name.rfind("A100", 0) == 0) {
      const bool says80 = bare.find("80gb") != std::string::npos || gb > 60;
      score = (m.name == "A100-80GB") == says80 ? 2 : 0;
    }
    if (score > best_score) {
      best_score = score;
      best = &m;
    }
  }
  return best;
}

std::string modelNames() {
  std::string out;
  for (const auto& m : catalog()) {
    if (!out.empty()) out += ", ";
    out += m.name;
  }
  return out;
}

}  // namespace spillway::gpu
