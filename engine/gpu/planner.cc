#include "gpu/planner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>

namespace spillway::gpu {

namespace {

constexpr double kPenaltyWeight = 0.05;
constexpr double kKindPenalty = 0.001;
constexpr size_t kMaxStates = 4'000'000;

// One way to use one GPU: a placed layout with its instances assigned to
// demands, reduced to what the search needs.
struct Option {
  std::vector<int> cap;  // compute slices per demand
  double penalty = 0;
  std::vector<PlannedInstance> instances;
};

void enumerateLayouts(const GpuModel& m, int slice, int compute, std::map<const Profile*, int>& count,
                      std::vector<PlacedInstance>& cur, std::vector<std::vector<PlacedInstance>>& out) {
  if (slice >= kMemorySlices) {
    out.push_back(cur);
    return;
  }
  enumerateLayouts(m, slice + 1, compute, count, cur, out);  // this slice left empty
  for (const auto& p : m.profiles) {
    if (p.media) continue;
    if (std::find(p.starts.begin(), p.starts.end(), slice) == p.starts.end()) continue;
    if (slice + p.memory_slices > kMemorySlices || compute + p.compute_slices > kComputeSlices) continue;
    if (count[&p] >= p.max_instances) continue;
    ++count[&p];
    cur.push_back({&p, slice});
    enumerateLayouts(m, slice + p.memory_slices, compute + p.compute_slices, count, cur, out);
    cur.pop_back();
    --count[&p];
  }
}

double penaltyOf(const GpuModel& m, const std::vector<PlannedInstance>& inst, const std::vector<Demand>& demands,
                 double* waste_gb, int* unused) {
  double waste = 0;
  int used_slices = 0, compute = 0;
  for (const auto& pi : inst) {
    used_slices += pi.at.profile->memory_slices;
    if (pi.demand < 0) {
      waste += pi.at.profile->memory_gb;
    } else {
      waste += std::max(0.0, pi.at.profile->memory_gb - demands[pi.demand].memory_gb);
      compute += pi.at.profile->compute_slices;
    }
  }
  waste += (kMemorySlices - used_slices) * (m.memory_gb / kMemorySlices);
  if (waste_gb) *waste_gb = waste;
  if (unused) *unused = kComputeSlices - compute;
  // Ties go to the layout with fewer kinds of instance (simpler to run and
  // to re-plan): 7 x 1g.10gb rather than 6 x 1g.10gb + 1g.20gb.
  std::vector<const Profile*> kinds;
  for (const auto& pi : inst) {
    if (std::find(kinds.begin(), kinds.end(), pi.at.profile) == kinds.end()) kinds.push_back(pi.at.profile);
  }
  return waste / m.memory_gb + static_cast<double>(kComputeSlices - compute) / kComputeSlices +
         kKindPenalty * static_cast<double>(kinds.size() > 1 ? kinds.size() - 1 : 0);
}

// Every distinct capacity vector one GPU of model `m` can give, with the
// least penalty for it; dominated ones dropped.
std::vector<Option> optionsFor(const GpuModel& m, const std::vector<Demand>& demands) {
  std::vector<std::vector<PlacedInstance>> layouts;
  std::map<const Profile*, int> count;
  std::vector<PlacedInstance> cur;
  enumerateLayouts(m, 0, 0, count, cur, layouts);
  const int nd = static_cast<int>(demands.size());
  std::map<std::vector<int>, Option> best;
  for (auto& layout : layouts) {
    // Same-profile instances are interchangeable: assign them in
    // non-decreasing demand order so each split is generated once.
    std::stable_sort(layout.begin(), layout.end(),
                     [](const PlacedInstance& a, const PlacedInstance& b) { return a.profile < b.profile; });
    std::vector<PlannedInstance> inst(layout.size());
    for (size_t i = 0; i < layout.size(); ++i) inst[i].at = layout[i];
    std::vector<int> cap(nd, 0);
    auto assign = [&](auto&& self, size_t i) -> void {
      if (i == inst.size()) {
        const double pen = penaltyOf(m, inst, demands, nullptr, nullptr);
        auto it = best.find(cap);
        if (it == best.end() || pen < it->second.penalty - 1e-12) best[cap] = Option{cap, pen, inst};
        return;
      }
      const int lo = i > 0 && inst[i - 1].at.profile == inst[i].at.profile ? inst[i - 1].demand : -1;
      for (int d = lo; d < nd; ++d) {
        if (d >= 0 && demands[d].memory_gb > inst[i].at.profile->memory_gb + 1e-9) continue;
        inst[i].demand = d;
        if (d >= 0) cap[d] += inst[i].at.profile->compute_slices;
        self(self, i + 1);
        if (d >= 0) cap[d] -= inst[i].at.profile->compute_slices;
      }
      inst[i].demand = -1;
    };
    assign(assign, 0);
  }
  std::vector<Option> all;
  for (auto& [k, o] : best) all.push_back(std::move(o));
  std::vector<bool> keep(all.size(), false);
  for (size_t i = 0; i < all.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < all.size() && !dominated; ++j) {
      if (i == j) continue;
      bool ge = true, gt = all[j].penalty < all[i].penalty - 1e-12;
      for (int d = 0; d < nd && ge; ++d) {
        ge = all[j].cap[d] >= all[i].cap[d];
        gt = gt || all[j].cap[d] > all[i].cap[d];
      }
      dominated = ge && gt && all[j].penalty <= all[i].penalty + 1e-12;
    }
    keep[i] = !dominated;
  }
  std::vector<Option> kept;
  for (size_t i = 0; i < all.size(); ++i) {
    if (keep[i]) kept.push_back(std::move(all[i]));
  }
  for (auto& o : kept) {
    std::sort(o.instances.begin(), o.instances.end(),
              [](const PlannedInstance& a, const PlannedInstance& b) { return a.at.start < b.at.start; });
  }
  return kept;
}

double balanceOf(const std::vector<Demand>& demands, const std::vector<int>& cap, int total_slices) {
  double b = 1;
  for (size_t d = 0; d < demands.size(); ++d) {
    const double share_of_capacity = static_cast<double>(cap[d]) / total_slices;
    b = std::min(b, share_of_capacity / demands[d].share);
  }
  return std::max(0.0, b);
}

void fill(const std::vector<Demand>& demands, Layout& l) {
  const int nd = static_cast<int>(demands.size());
  l.capacity.assign(nd, 0);
  l.instances.assign(nd, 0);
  l.penalty = 0;
  l.wasted_memory_gb = 0;
  l.unused_compute = 0;
  for (const auto& g : l.gpus) {
    double w = 0;
    int u = 0;
    l.penalty += penaltyOf(*g.model, g.instances, demands, &w, &u);
    l.wasted_memory_gb += w;
    l.unused_compute += u;
    for (const auto& pi : g.instances) {
      if (pi.demand < 0) continue;
      l.capacity[pi.demand] += pi.at.profile->compute_slices;
      ++l.instances[pi.demand];
    }
  }
  const int total = kComputeSlices * static_cast<int>(l.gpus.size());
  l.balance = balanceOf(demands, l.capacity, total);
  l.score = l.balance - kPenaltyWeight * l.penalty / std::max<size_t>(1, l.gpus.size());
}

std::string gb(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f GB", v);
  return buf;
}

}  // namespace

double scoreOf(const std::vector<Demand>& demands, const Layout& layout) {
  Layout copy = layout;
  fill(demands, copy);
  return copy.score;
}

Plan plan(const std::vector<const GpuModel*>& gpus, std::vector<Demand> demands, int alternatives) {
  const auto t0 = std::chrono::steady_clock::now();
  Plan out;
  auto done = [&]() -> Plan {
    out.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
  };
  if (gpus.empty()) {
    out.error = "no GPUs to plan for";
    return done();
  }
  if (demands.empty()) {
    out.error = "no demands: give at least one (name, memory per replica, share of traffic)";
    return done();
  }
  double total_share = 0;
  for (const auto& d : demands) {
    if (!(d.share > 0) || !std::isfinite(d.share)) {
      out.error = "demand \"" + d.name + "\": share must be a positive number";
      return done();
    }
    if (!(d.memory_gb >= 0) || !std::isfinite(d.memory_gb)) {
      out.error = "demand \"" + d.name + "\": memory must be a number of GB >= 0";
      return done();
    }
    total_share += d.share;
  }
  for (auto& d : demands) d.share /= total_share;
  out.demands = demands;
  for (const auto& d : demands) {
    bool fits = false;
    for (const auto* g : gpus) fits = fits || d.memory_gb <= g->memory_gb + 1e-9;
    if (!fits) {
      out.error = "demand \"" + d.name + "\" needs " + gb(d.memory_gb) +
                  " per replica, more than any of these GPUs has (one replica runs on one instance)";
      return done();
    }
  }
  const int nd = static_cast<int>(demands.size());
  const int total_slices = kComputeSlices * static_cast<int>(gpus.size());
  // State: capacity per demand, clipped at what can matter for the balance.
  std::vector<int> radix(nd);
  size_t states = 1;
  for (int d = 0; d < nd; ++d) {
    radix[d] = static_cast<int>(std::ceil(demands[d].share * total_slices - 1e-9)) + 1;
    states *= static_cast<size_t>(radix[d]);
    if (states > kMaxStates) {
      out.error = "too many GPUs and demands to plan exactly at once; plan fewer (e.g. one model's GPUs at a time)";
      return done();
    }
  }
  std::map<const GpuModel*, std::vector<Option>> options;
  for (const auto* g : gpus) {
    if (!options.count(g)) options[g] = optionsFor(*g, demands);
  }
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<std::vector<float>> cost(gpus.size() + 1, std::vector<float>(states, inf));
  std::vector<std::vector<std::pair<int32_t, int32_t>>> back(gpus.size() + 1,
                                                            std::vector<std::pair<int32_t, int32_t>>(states, {-1, -1}));
  cost[0][0] = 0;
  std::vector<int> digits(nd);
  for (size_t g = 0; g < gpus.size(); ++g) {
    const auto& opts = options[gpus[g]];
    const auto& cur = cost[g];
    auto& next = cost[g + 1];
    auto& nb = back[g + 1];
    for (size_t s = 0; s < states; ++s) {
      if (cur[s] == inf) continue;
      size_t rest = s;
      for (int d = 0; d < nd; ++d) {
        digits[d] = static_cast<int>(rest % radix[d]);
        rest /= radix[d];
      }
      for (size_t k = 0; k < opts.size(); ++k) {
        size_t idx = 0, mul = 1;
        for (int d = 0; d < nd; ++d) {
          idx += static_cast<size_t>(std::min(digits[d] + opts[k].cap[d], radix[d] - 1)) * mul;
          mul *= radix[d];
        }
        const float c = cur[s] + static_cast<float>(opts[k].penalty);
        if (c < next[idx]) {
          next[idx] = c;
          nb[idx] = {static_cast<int32_t>(s), static_cast<int32_t>(k)};
        }
      }
    }
  }
  // Rank the final states by score.
  std::vector<std::pair<double, size_t>> ranked;
  std::vector<int> cap(nd);
  for (size_t s = 0; s < states; ++s) {
    if (cost[gpus.size()][s] == inf) continue;
    size_t rest = s;
    for (int d = 0; d < nd; ++d) {
      cap[d] = static_cast<int>(rest % radix[d]);
      rest /= radix[d];
    }
    const double score = balanceOf(demands, cap, total_slices) -
                         kPenaltyWeight * cost[gpus.size()][s] / static_cast<double>(gpus.size());
    ranked.push_back({score, s});
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (size_t r = 0; r < ranked.size() && static_cast<int>(out.layouts.size()) < std::max(1, alternatives); ++r) {
    Layout l;
    l.gpus.resize(gpus.size());
    size_t s = ranked[r].second;
    for (size_t g = gpus.size(); g > 0; --g) {
      const auto [prev, k] = back[g][s];
      l.gpus[g - 1].model = gpus[g - 1];
      l.gpus[g - 1].instances = options[gpus[g - 1]][k].instances;
      s = static_cast<size_t>(prev);
    }
    fill(demands, l);
    out.layouts.push_back(std::move(l));
  }
  return done();
}

std::string nvidiaSmiCommands(const Layout& layout) {
  std::string out;
  for (size_t g = 0; g < layout.gpus.size(); ++g) {
    std::vector<PlacedInstance> placed;
    for (const auto& pi : layout.gpus[g].instances) placed.push_back(pi.at);
    out += createCommand(static_cast<int>(g), placed) + "\n";
  }
  return out;
}

namespace {

// A GPU's instances largest first (the order they are created and listed).
std::vector<PlannedInstance> creationOrder(const PlannedGpu& g) {
  auto v = g.instances;
  std::stable_sort(v.begin(), v.end(), [](const PlannedInstance& a, const PlannedInstance& b) {
    if (a.at.profile->compute_slices != b.at.profile->compute_slices)
      return a.at.profile->compute_slices > b.at.profile->compute_slices;
    if (a.at.profile->memory_slices != b.at.profile->memory_slices)
      return a.at.profile->memory_slices > b.at.profile->memory_slices;
    return a.at.start < b.at.start;
  });
  return v;
}

}  // namespace

std::string migPartedConfig(const Layout& layout) {
  std::string out = "version: v1\nmig-configs:\n  spillway-plan:\n";
  for (size_t g = 0; g < layout.gpus.size(); ++g) {
    std::map<std::string, int> counts;
    for (const auto& pi : layout.gpus[g].instances) ++counts[pi.at.profile->name];
    out += "    - devices: [" + std::to_string(g) + "]\n";
    if (counts.empty()) {
      out += "      mig-enabled: false\n";
      continue;
    }
    out += "      mig-enabled: true\n      mig-devices:\n";
    for (const auto& [name, n] : counts) out += "        \"" + name + "\": " + std::to_string(n) + "\n";
  }
  return out;
}

std::string placementYaml(const std::vector<Demand>& demands, const Layout& layout) {
  std::string out = "gpu:\n  inventory: declared\n  gpus:\n";
  std::map<std::string, std::vector<std::string>> by_class;
  for (size_t g = 0; g < layout.gpus.size(); ++g) {
    const auto order = creationOrder(layout.gpus[g]);
    out += "    - model: " + layout.gpus[g].model->name + "\n";
    if (order.empty()) continue;
    out += "      mig: [";
    for (size_t i = 0; i < order.size(); ++i) {
      out += (i ? ", " : "") + order[i].at.profile->name;
      if (order[i].demand >= 0) {
        by_class[demands[order[i].demand].priority].push_back("MIG-declared-" + std::to_string(g) + "-" +
                                                             std::to_string(i));
      }
    }
    out += "]\n";
  }
  if (!by_class.empty()) out += "  placement:\n";
  for (const auto& [cls, uuids] : by_class) {
    out += "    " + cls + ": [";
    for (size_t i = 0; i < uuids.size(); ++i) out += (i ? ", " : "") + uuids[i];
    out += "]\n";
  }
  return out;
}

std::string formatPlan(const Plan& p) {
  if (!p.error.empty()) return "error: " + p.error + "\n";
  std::string out;
  char buf[256];
  for (size_t i = 0; i < p.layouts.size(); ++i) {
    const Layout& l = p.layouts[i];
    std::snprintf(buf, sizeof buf, "Layout %zu of %zu: score %.3f (balance %.2f, wasted memory %.0f GB, %d compute slices unused)\n",
                  i + 1, p.layouts.size(), l.score, l.balance, l.wasted_memory_gb, l.unused_compute);
    out += buf;
    for (size_t g = 0; g < l.gpus.size(); ++g) {
      out += "  GPU " + std::to_string(g) + " " + l.gpus[g].model->name + ":";
      if (l.gpus[g].instances.empty()) out += " (unused)";
      for (const auto& pi : l.gpus[g].instances) {
        out += " [" + pi.at.profile->name + "@" + std::to_string(pi.at.start) + " " +
               (pi.demand >= 0 ? p.demands[pi.demand].name : std::string("spare")) + "]";
      }
      out += "\n";
    }
    const int total = kComputeSlices * static_cast<int>(l.gpus.size());
    for (size_t d = 0; d < p.demands.size(); ++d) {
      std::snprintf(buf, sizeof buf, "  %-20s %-9s %2d instances, %2d compute slices = %3.0f %% of compute for %3.0f %% of traffic\n",
                    p.demands[d].name.c_str(), p.demands[d].priority.c_str(), l.instances[d], l.capacity[d],
                    100.0 * l.capacity[d] / total, 100.0 * p.demands[d].share);
      out += buf;
    }
    out += "  commands (run as root with the GPU idle; MIG mode on first: nvidia-smi -i N -mig 1):\n";
    const std::string cmds = nvidiaSmiCommands(l);
    size_t pos = 0;
    while (pos < cmds.size()) {
      const size_t nl = cmds.find('\n', pos);
      out += "    " + cmds.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
    }
    out += "\n";
  }
  if (!p.layouts.empty()) {
    out += "mig-parted config for layout 1:\n" + migPartedConfig(p.layouts[0]) + "\n";
    out += "spillway config for layout 1 (a declared inventory; on a real machine, name the instances by the\n"
           "UUIDs `nvidia-smi -L` prints once they exist):\n" +
           placementYaml(p.demands, p.layouts[0]);
  }
  std::snprintf(buf, sizeof buf, "(planned in %.1f ms)\n", p.elapsed_ms);
  out += buf;
  return out;
}

std::string parseDemand(std::string_view text, Demand& out) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t colon = text.find(':', pos);
    parts.emplace_back(text.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos));
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  const std::string usage = "expected NAME:PRIORITY:MEMORY_GB:SHARE (e.g. chat:critical:10:0.3), got \"" +
                            std::string(text) + "\"";
  if (parts.size() != 4 || parts[0].empty()) return usage;
  if (parts[1] != "critical" && parts[1] != "standard" && parts[1] != "sheddable") {
    return "priority must be critical, standard or sheddable, got \"" + parts[1] + "\"";
  }
  auto num = [](const std::string& s, double& v) {
    std::string t = s;
    if (t.size() > 2 && (t.ends_with("gb") || t.ends_with("GB"))) t.resize(t.size() - 2);
    char* end = nullptr;
    v = std::strtod(t.c_str(), &end);
    return !t.empty() && end == t.c_str() + t.size() && std::isfinite(v);
  };
  out.name = parts[0];
  out.priority = parts[1];
  if (!num(parts[2], out.memory_gb) || out.memory_gb < 0) return "memory must be a number of GB, got \"" + parts[2] + "\"";
  if (!num(parts[3], out.share) || out.share <= 0) return "share must be a positive number, got \"" + parts[3] + "\"";
  return "";
}

std::string parseGpus(std::string_view text, std::string& model, uint32_t& count) {
  model = std::string(text);
  count = 1;
  const size_t x = text.find_last_of("x*");
  if (x != std::string_view::npos && x + 1 < text.size()) {
    const std::string n(text.substr(x + 1));
    char* end = nullptr;
    const long v = std::strtol(n.c_str(), &end, 10);
    if (end == n.c_str() + n.size() && v >= 1 && v <= 64) {
      model = std::string(text.substr(0, x));
      count = static_cast<uint32_t>(v);
    }
  }
  if (!findModel(model)) return "unknown GPU model \"" + model + "\"; expected one of: " + modelNames();
  return "";
}

}  // namespace spillway::gpu
