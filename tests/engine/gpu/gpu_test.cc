#include "gpu_test.h"

#include <QtTest>

#include <map>
#include <random>

#include "gpu/catalog.h"
#include "gpu/layout.h"
#include "gpu/nvml.h"
#include "gpu/planner.h"
#include "gpu/selector.h"
#include "gpu/smi_parser.h"

using namespace spillway::gpu;

namespace {

const GpuModel& model(const char* name) {
  const GpuModel* m = findModel(name);
  if (!m) qFatal("no catalog model %s", name);
  return *m;
}

// An independent brute force for the planner's optimum on small cases:
// every subset of (profile, start) placements that keeps the rules, every
// assignment of its instances to demands, every combination over GPUs.
struct Choice {
  std::vector<int> cap;
  double penalty;
};

std::vector<Choice> bruteChoices(const GpuModel& m, const std::vector<Demand>& demands) {
  std::vector<PlacedInstance> candidates;
  for (const auto& p : m.profiles) {
    if (p.media) continue;
    for (int s : p.starts) candidates.push_back({&p, s});
  }
  std::vector<std::vector<PlacedInstance>> layouts;
  std::vector<PlacedInstance> cur;
  auto rec = [&](auto&& self, size_t i) -> void {
    if (i == candidates.size()) {
      layouts.push_back(cur);
      return;
    }
    self(self, i + 1);
    cur.push_back(candidates[i]);
    if (checkLayout(m, cur).empty()) self(self, i + 1);
    cur.pop_back();
  };
  rec(rec, 0);
  std::vector<Choice> out;
  const int nd = static_cast<int>(demands.size());
  for (const auto& l : layouts) {
    std::vector<int> label(l.size(), -1);
    while (true) {
      bool fits = true;
      Layout one;
      one.gpus.push_back({&m, {}});
      for (size_t i = 0; i < l.size(); ++i) {
        if (label[i] >= 0 && demands[label[i]].memory_gb > l[i].profile->memory_gb) fits = false;
        one.gpus[0].instances.push_back({l[i], label[i]});
      }
      if (fits) {
        // The score of one GPU alone gives its penalty back: balance is
        // recomputed over the whole combination below.
        std::vector<int> cap(nd, 0);
        for (size_t i = 0; i < l.size(); ++i) {
          if (label[i] >= 0) cap[label[i]] += l[i].profile->compute_slices;
        }
        const double score_alone = scoreOf(demands, one);
        double balance = 1;
        for (int d = 0; d < nd; ++d) balance = std::min(balance, (cap[d] / 7.0) / demands[d].share);
        out.push_back({cap, (balance - score_alone) / 0.05});
      }
      size_t k = 0;
      while (k < l.size() && ++label[k] == nd) label[k++] = -1;
      if (k == l.size()) break;
    }
  }
  return out;
}

double bruteBest(const std::vector<const GpuModel*>& gpus, std::vector<Demand> demands) {
  double total = 0;
  for (const auto& d : demands) total += d.share;
  for (auto& d : demands) d.share /= total;
  // Per GPU: the least penalty per capacity vector (enough for the optimum).
  std::vector<std::map<std::vector<int>, double>> per;
  for (const auto* g : gpus) {
    std::map<std::vector<int>, double> best;
    for (const auto& c : bruteChoices(*g, demands)) {
      auto it = best.find(c.cap);
      if (it == best.end() || c.penalty < it->second) best[c.cap] = c.penalty;
    }
    per.push_back(std::move(best));
  }
  std::map<std::vector<int>, double> acc{{std::vector<int>(demands.size(), 0), 0.0}};
  for (const auto& options : per) {
    std::map<std::vector<int>, double> next;
    for (const auto& [cap, pen] : acc) {
      for (const auto& [c2, p2] : options) {
        std::vector<int> sum = cap;
        for (size_t d = 0; d < sum.size(); ++d) sum[d] += c2[d];
        auto it = next.find(sum);
        if (it == next.end() || pen + p2 < it->second) next[sum] = pen + p2;
      }
    }
    acc = std::move(next);
  }
  double best = -1e9;
  const double slices = 7.0 * gpus.size();
  for (const auto& [cap, pen] : acc) {
    double balance = 1;
    for (size_t d = 0; d < cap.size(); ++d) balance = std::min(balance, (cap[d] / slices) / demands[d].share);
    best = std::max(best, balance - 0.05 * pen / gpus.size());
  }
  return best;
}

}  // namespace

void GpuTest::catalogKnowsTheModelsAndTheirDriverNames() {
  for (const char* name : {"A100-40GB", "A100-80GB", "H100-80GB", "H100-PCIE-80GB", "H100-94GB", "H200-141GB"}) {
    const GpuModel& m = model(name);
    QCOMPARE(m.profiles.size(), size_t(7));
    int seven = 0;
    for (const auto& p : m.profiles) seven += p.compute_slices == 7;
    QCOMPARE(seven, 1);
  }
  QCOMPARE(findModel("NVIDIA A100-SXM4-80GB")->name, std::string("A100-80GB"));
  QCOMPARE(findModel("NVIDIA A100-PCIE-40GB")->name, std::string("A100-40GB"));
  QCOMPARE(findModel("NVIDIA A100-SXM4", 80ull << 30)->name, std::string("A100-80GB"));
  QCOMPARE(findModel("NVIDIA H100 80GB HBM3")->name, std::string("H100-80GB"));
  QCOMPARE(findModel("NVIDIA H100 PCIe")->name, std::string("H100-PCIE-80GB"));
  QCOMPARE(findModel("NVIDIA H100 NVL")->name, std::string("H100-94GB"));
  QCOMPARE(findModel("NVIDIA H200")->name, std::string("H200-141GB"));
  QVERIFY(findModel("NVIDIA GeForce RTX 4090") == nullptr);
  const GpuModel& a = model("a100-80gb");
  const Profile* p = a.profile("1g.10gb");
  QVERIFY(p);
  QCOMPARE(p->id, 19u);
  QCOMPARE(p->max_instances, 7);
  QCOMPARE(p->starts, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  QCOMPARE(a.profile("3g.40gb")->starts, (std::vector<int>{0, 4}));
  QCOMPARE(a.profile("3g.40gb")->memory_slices, 4);
  QCOMPARE(model("A100-40GB").profile("1g.5gb")->id, 19u);
  QCOMPARE(model("H200-141GB").profile("1g.18gb")->id, 19u);
  QCOMPARE(model("H200-141GB").profile("7g.141gb")->sm_count, 132);
}

void GpuTest::layoutRulesRejectBadPlacements() {
  const GpuModel& a = model("A100-80GB");
  auto at = [&](const char* p, int s) { return PlacedInstance{a.profile(p), s}; };
  QCOMPARE(checkLayout(a, {at("3g.40gb", 0), at("3g.40gb", 4)}), std::string());
  QVERIFY(checkLayout(a, {at("3g.40gb", 2)}).find("cannot start at memory slice 2") != std::string::npos);
  QVERIFY(checkLayout(a, {at("4g.40gb", 0), at("1g.10gb", 3)}).find("overlaps") != std::string::npos);
  QVERIFY(checkLayout(a, {at("4g.40gb", 0), at("2g.20gb", 4), at("2g.20gb", 6)}).find("cannot start") != std::string::npos);
  QVERIFY(checkLayout(a, {at("1g.10gb+me", 0), at("1g.10gb+me", 1)}).find("more than") != std::string::npos);
  std::vector<PlacedInstance> eight;
  for (int s = 0; s < 7; ++s) eight.push_back(at("1g.10gb", s));
  QCOMPARE(checkLayout(a, eight), std::string());
  QCOMPARE(createCommand(0, eight), std::string("nvidia-smi mig -i 0 -cgi 19,19,19,19,19,19,19 -C"));
  QCOMPARE(createCommand(2, {at("1g.10gb", 6), at("3g.40gb", 0), at("2g.20gb", 4)}),
           std::string("nvidia-smi mig -i 2 -cgi 9,14,19 -C"));
}

void GpuTest::firstFitPlacesLargerFirstAndSaysWhatDoesNotFit() {
  const GpuModel& a = model("A100-80GB");
  FirstFit fit = placeFirstFit(a, {"3g.40gb", "2g.20gb", "1g.10gb"});
  QCOMPARE(fit.error, std::string());
  QCOMPARE(fit.layout.size(), size_t(3));
  QCOMPARE(fit.layout[0].start, 0);
  QCOMPARE(fit.layout[1].start, 4);
  QCOMPARE(fit.layout[2].start, 6);
  // Seven compute slices, but memory slice 7 takes no 1g.
  fit = placeFirstFit(a, {"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"});
  QVERIFY2(fit.error.find("1g.10gb does not fit") != std::string::npos, fit.error.c_str());
  fit = placeFirstFit(a, {"3g.20gb"});
  QVERIFY2(fit.error.find("unknown MIG profile \"3g.20gb\" for A100-80GB (known: 7g.80gb") != std::string::npos,
           fit.error.c_str());
  fit = placeFirstFit(a, {"1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb", "1g.10gb"});
  QCOMPARE(fit.error, std::string());
  QCOMPARE(fit.layout.back().start, 6);
}

void GpuTest::parsesNvidiaSmiNewAndOldForms() {
  const SmiParse now = parseNvidiaSmiList(
      "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-5fd4a1b2-0000-1111-2222-333344445555)\n"
      "  MIG 3g.40gb     Device  0: (UUID: MIG-c6d4f1e2-aaaa-bbbb-cccc-ddddeeeeffff)\r\n"
      "  MIG 1g.10gb     Device  1: (UUID: MIG-0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff)\n"
      "\n"
      "GPU 1: NVIDIA H200 (UUID: GPU-99999999-0000-1111-2222-333344445555)\n");
  QCOMPARE(now.error, std::string());
  QCOMPARE(now.inventory.gpus.size(), size_t(2));
  const GpuDevice& g0 = now.inventory.gpus[0];
  QCOMPARE(g0.model, std::string("A100-80GB"));
  QVERIFY(g0.mig_enabled);
  QCOMPARE(g0.mig.size(), size_t(2));
  QCOMPARE(g0.mig[0].profile, std::string("3g.40gb"));
  QCOMPARE(g0.mig[0].uuid, std::string("MIG-c6d4f1e2-aaaa-bbbb-cccc-ddddeeeeffff"));
  QCOMPARE(g0.mig[0].profile_id, 9u);
  QCOMPARE(g0.mig[0].compute_slices, 3);
  QCOMPARE(g0.mig[1].slot, 1u);  // the device index
  QCOMPARE(now.inventory.gpus[1].model, std::string("H200-141GB"));
  QVERIFY(!now.inventory.gpus[1].mig_enabled);

  const SmiParse old = parseNvidiaSmiList(
      "GPU 0: A100-SXM4-40GB (UUID: GPU-5fd4a1b2)\n"
      "  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5fd4a1b2/7/0)\n"
      "  MIG 2g.10gb Device 1: (UUID: MIG-GPU-5fd4a1b2/3/1)\n");
  QCOMPARE(old.error, std::string());
  QCOMPARE(old.inventory.gpus[0].model, std::string("A100-40GB"));
  QCOMPARE(old.inventory.gpus[0].mig[0].gpu_instance_id, 7u);
  QCOMPARE(old.inventory.gpus[0].mig[1].gpu_instance_id, 3u);
  QCOMPARE(old.inventory.gpus[0].mig[1].compute_instance_id, 1u);
  QCOMPARE(old.inventory.gpus[0].mig[1].profile_id, 14u);
  QCOMPARE(old.inventory.gpus[0].mig[1].slot, 3u);  // the GPU instance id
}

void GpuTest::nvidiaSmiMalformedLinesAreErrorsWithLineNumbers() {
  const std::pair<const char*, const char*> cases[] = {
      {"GPU x: NVIDIA A100 (UUID: GPU-1)\n", "line 1: expected \"GPU <index>"},
      {"GPU 0: NVIDIA A100-SXM4-80GB\n", "line 1: GPU line without \"(UUID: ...)\""},
      {"  MIG 1g.10gb Device 0: (UUID: MIG-1)\n", "line 1: MIG device before any GPU line"},
      {"GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\n\n  MIG 1g.10gb Device: (UUID: MIG-1)\n", "line 3: expected \"MIG"},
      {"GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\n  MIG 1g.10gb Device 0: (UUID: MIG-GPU-1/x/0)\n", "line 2: old-style"},
      {"GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nNo devices were found\n", "line 2: neither a GPU nor a MIG"},
  };
  for (const auto& [text, want] : cases) {
    const SmiParse p = parseNvidiaSmiList(text);
    QVERIFY2(p.error.find(want) != std::string::npos, (p.error + " / wanted " + want).c_str());
  }
  const std::string binary("\xff\xfe\0garbage", 10);
  QVERIFY(parseNvidiaSmiList(binary).error.find("line 1: neither") != std::string::npos);
  QCOMPARE(parseNvidiaSmiList("").error, std::string());
  QCOMPARE(parseNvidiaSmiList("").inventory.gpus.size(), size_t(0));
}

void GpuTest::nvmlReadsGpusAndMigDevicesFromTheFake() {
  qputenv("FAKE_NVML_MODE", "a100_mig");
  Nvml nvml(FAKE_NVML_PATH);
  QVERIFY2(nvml.ok(), nvml.error().c_str());
  QCOMPARE(nvml.driverVersion(), std::string("550.54.15"));
  const Inventory inv = nvml.read();
  QCOMPARE(inv.source, std::string("nvml"));
  QCOMPARE(inv.gpus.size(), size_t(1));
  const GpuDevice& g = inv.gpus[0];
  QCOMPARE(g.name, std::string("NVIDIA A100-SXM4-80GB"));
  QCOMPARE(g.model, std::string("A100-80GB"));
  QCOMPARE(g.uuid, std::string("GPU-fake-0000"));
  QCOMPARE(g.memory_total_bytes, 81920ull << 20);
  QCOMPARE(g.memory_used_bytes, 1024ull << 20);
  QCOMPARE(g.utilization, 0.37);
  QCOMPARE(g.temperature_c, 41.0);
  QCOMPARE(g.power_watts, 87.5);
  QVERIFY(g.mig_enabled);
  QVERIFY(!g.mig_pending);
  QCOMPARE(g.mig.size(), size_t(3));  // index 1 is a hole
  QCOMPARE(g.mig[0].profile, std::string("3g.40gb"));
  QCOMPARE(g.mig[0].gpu_instance_id, 1u);
  QCOMPARE(g.mig[0].sm_count, 42);
  QCOMPARE(g.mig[0].compute_slices, 3);
  QCOMPARE(g.mig[0].profile_id, 9u);
  QCOMPARE(g.mig[2].uuid, std::string("MIG-fake-2"));
  QCOMPARE(g.mig[2].gpu_instance_id, 6u);
  QCOMPARE(g.mig[2].slot, 6u);
  QCOMPARE(g.mig[2].profile, std::string("1g.10gb"));
}

void GpuTest::nvmlProfileTableMatchesTheCatalog() {
  qputenv("FAKE_NVML_MODE", "a100_mig");
  Nvml nvml(FAKE_NVML_PATH);
  const auto driver = nvml.profiles(0);
  QCOMPARE(driver.size(), size_t(10));
  int supported = 0;
  for (const auto& d : driver) supported += d.supported;
  QCOMPARE(supported, 7);
  QCOMPARE(catalogMismatches(model("A100-80GB"), driver), std::vector<std::string>{});
  // The same table against the wrong model: the SM counts and memory differ.
  const auto wrong = catalogMismatches(model("H200-141GB"), driver);
  QVERIFY(!wrong.empty());
  bool sms = false;
  for (const auto& w : wrong) sms = sms || w.find("SMs 42 vs 60") != std::string::npos;
  QVERIFY(sms);
}

void GpuTest::nvmlNotSupportedAnswersAreUnknownNotErrors() {
  qputenv("FAKE_NVML_MODE", "not_supported");
  Nvml nvml(FAKE_NVML_PATH);
  QVERIFY(nvml.ok());
  const Inventory inv = nvml.read();
  QCOMPARE(inv.gpus.size(), size_t(1));
  QCOMPARE(inv.gpus[0].model, std::string("H100-80GB"));
  QCOMPARE(inv.gpus[0].utilization, -1.0);
  QCOMPARE(inv.gpus[0].temperature_c, -1.0);
  QCOMPARE(inv.gpus[0].power_watts, -1.0);
  QVERIFY(!inv.gpus[0].mig_enabled);
  QVERIFY(inv.gpus[0].mig.empty());
  for (const auto& d : nvml.profiles(0)) {
    QVERIFY(!d.supported);
    QCOMPARE(d.error, std::string());  // NOT_SUPPORTED is an answer, not an error
  }
  qputenv("FAKE_NVML_MODE", "a100_mig");
}

void GpuTest::nvmlMissingLibrarySymbolOrDriverIsSaidPlainly() {
  Nvml missing("/nonexistent/libnvidia-ml.so.1");
  QVERIFY(!missing.ok());
  QVERIFY2(missing.error().find("not found (no NVIDIA driver") != std::string::npos, missing.error().c_str());
  const Inventory none = missing.read();
  QCOMPARE(none.source, std::string("none"));
  QVERIFY(none.gpus.empty());
  QCOMPARE(none.detail, missing.error());

  Nvml partial(FAKE_NVML_PARTIAL_PATH);
  QVERIFY(!partial.ok());
  QVERIFY2(partial.error().find("missing symbol nvmlDeviceGetMemoryInfo") != std::string::npos, partial.error().c_str());

  qputenv("FAKE_NVML_MODE", "init_fails");
  Nvml down(FAKE_NVML_PATH);
  QVERIFY(!down.ok());
  QCOMPARE(down.error(), std::string("nvmlInit: Driver Not Loaded"));
  QVERIFY(down.profiles(0).empty());
  qputenv("FAKE_NVML_MODE", "a100_mig");
}

void GpuTest::selectorsMatchUuidIndexProfileAndName() {
  Inventory inv;
  GpuDevice g;
  g.index = 1;
  g.uuid = "GPU-a";
  g.mig.push_back({"MIG-x", 0, 1, 0, "3g.40gb", 9, 0, 4, 3, 0, 42});
  g.mig.push_back({"MIG-y", 1, 2, 0, "1g.10gb", 19, 4, 1, 1, 0, 14});
  inv.gpus.push_back(g);
  const Binding x = resolve(inv, "MIG-x");
  QVERIFY(x.gpu && x.mig && x.mig->uuid == "MIG-x");
  QVERIFY(resolve(inv, "1").gpu && !resolve(inv, "1").mig);
  QVERIFY(!resolve(inv, "MIG-z").gpu);
  QVERIFY(selects("MIG-x", "b", "MIG-x", x));
  QVERIFY(selects("3g.40gb", "b", "MIG-x", x));
  QVERIFY(selects("1:3g.40gb", "b", "MIG-x", x));
  QVERIFY(!selects("0:3g.40gb", "b", "MIG-x", x));
  QVERIFY(selects("1", "b", "MIG-x", x));
  QVERIFY(selects("GPU-a", "b", "MIG-x", x));
  QVERIFY(!selects("1g.10gb", "b", "MIG-x", x));
  QVERIFY(selects("b", "b", "", Binding{}));  // by backend name, bound or not
  QVERIFY(!selects("1", "b", "", Binding{}));
  QVERIFY(selectsAny({"1g.10gb", "3g.40gb"}, "b", "MIG-x", x));
}

void GpuTest::plannerPrintsTheArticleLayout() {
  // The article: an A100 split into seven 1g instances for two classes.
  const Plan p = plan({&model("A100-40GB")}, {{"chat", "critical", 5, 0.3}, {"batch", "sheddable", 5, 0.7}}, 3);
  QCOMPARE(p.error, std::string());
  QCOMPARE(p.layouts.size(), size_t(3));
  const Layout& best = p.layouts[0];
  QCOMPARE(nvidiaSmiCommands(best), std::string("nvidia-smi mig -i 0 -cgi 19,19,19,19,19,19,19 -C\n"));
  QCOMPARE(best.capacity, (std::vector<int>{2, 5}));
  QCOMPARE(best.unused_compute, 0);
  QVERIFY(p.layouts[0].score >= p.layouts[1].score && p.layouts[1].score >= p.layouts[2].score);
  const std::string text = formatPlan(p);
  QVERIFY(text.find("mig-devices:\n        \"1g.5gb\": 7") != std::string::npos);
  QVERIFY(text.find("critical: [MIG-declared-0-0, MIG-declared-0-1]") != std::string::npos);
  // A mixed layout: a big replica and small ones.
  const Plan mixed = plan({&model("A100-80GB")}, {{"big", "critical", 40, 0.5}, {"small", "sheddable", 10, 0.5}}, 1);
  QCOMPARE(mixed.error, std::string());
  QCOMPARE(nvidiaSmiCommands(mixed.layouts[0]).rfind("nvidia-smi mig -i 0 -cgi 9,", 0), size_t(0));
  for (const auto& g : mixed.layouts[0].gpus) {
    std::vector<PlacedInstance> placed;
    for (const auto& pi : g.instances) placed.push_back(pi.at);
    QCOMPARE(checkLayout(*g.model, placed), std::string());
  }
}

void GpuTest::plannerLayoutsAreValidAndOptimalForRandomMixes() {
  std::mt19937 rng(20261202);
  const char* models[] = {"A100-40GB", "A100-80GB", "H100-80GB", "H100-94GB", "H200-141GB"};
  const char* classes[] = {"critical", "standard", "sheddable"};
  for (int round = 0; round < 60; ++round) {
    const int ngpu = 1 + static_cast<int>(rng() % (round < 40 ? 2 : 8));
    const int nd = 1 + static_cast<int>(rng() % (round < 40 ? 2 : 4));
    std::vector<const GpuModel*> gpus;
    for (int g = 0; g < ngpu; ++g) gpus.push_back(&model(models[rng() % 5]));
    std::vector<Demand> demands;
    for (int d = 0; d < nd; ++d) {
      const double smallest = gpus[0]->memory_gb / 8;
      demands.push_back({"d" + std::to_string(d), classes[rng() % 3], smallest * (1 + rng() % 4),
                         0.05 + (rng() % 100) / 100.0});
    }
    const Plan p = plan(gpus, demands, 3);
    QVERIFY2(p.error.empty(), p.error.c_str());
    QVERIFY(!p.layouts.empty());
    for (const auto& l : p.layouts) {
      QCOMPARE(l.gpus.size(), gpus.size());
      for (size_t g = 0; g < l.gpus.size(); ++g) {
        QCOMPARE(l.gpus[g].model, gpus[g]);
        std::vector<PlacedInstance> placed;
        for (const auto& pi : l.gpus[g].instances) {
          placed.push_back(pi.at);
          if (pi.demand >= 0) QVERIFY(p.demands[pi.demand].memory_gb <= pi.at.profile->memory_gb + 1e-9);
        }
        QCOMPARE(checkLayout(*gpus[g], placed), std::string());
      }
      QVERIFY(std::abs(scoreOf(p.demands, l) - l.score) < 1e-6);
    }
    if (ngpu <= 2 && nd <= 2) {
      const double best = bruteBest(gpus, demands);
      QVERIFY2(std::abs(best - p.layouts[0].score) < 1e-4,
               qPrintable(QString("round %1: planner %2, brute force %3").arg(round).arg(p.layouts[0].score).arg(best)));
    }
  }
}

void GpuTest::plannerRefusesDemandsThatCannotFit() {
  Plan p = plan({&model("A100-40GB")}, {{"huge", "critical", 70, 1}}, 3);
  QVERIFY2(p.error.find("needs 70 GB per replica, more than any of these GPUs has") != std::string::npos, p.error.c_str());
  p = plan({}, {{"x", "critical", 1, 1}}, 3);
  QCOMPARE(p.error, std::string("no GPUs to plan for"));
  p = plan({&model("A100-40GB")}, {}, 3);
  QVERIFY(p.error.find("no demands") != std::string::npos);
  p = plan({&model("A100-40GB")}, {{"x", "critical", 1, 0}}, 3);
  QVERIFY(p.error.find("share must be a positive number") != std::string::npos);
  QCOMPARE(formatPlan(p).rfind("error: ", 0), size_t(0));
}

void GpuTest::parsesDemandAndGpuArguments() {
  Demand d;
  QCOMPARE(parseDemand("chat:critical:10:0.3", d), std::string());
  QCOMPARE(d.name, std::string("chat"));
  QCOMPARE(d.memory_gb, 10.0);
  QCOMPARE(d.share, 0.3);
  QCOMPARE(parseDemand("chat:critical:10gb:0.3", d), std::string());
  QVERIFY(parseDemand("chat:urgent:10:0.3", d).find("priority must be") != std::string::npos);
  QVERIFY(parseDemand("chat:critical:ten:0.3", d).find("memory must be") != std::string::npos);
  QVERIFY(parseDemand("chat:critical:10", d).find("expected NAME:PRIORITY") != std::string::npos);
  QVERIFY(parseDemand("chat:critical:10:-1", d).find("share must be") != std::string::npos);
  std::string m;
  uint32_t n = 0;
  QCOMPARE(parseGpus("H100-80GBx8", m, n), std::string());
  QCOMPARE(m, std::string("H100-80GB"));
  QCOMPARE(n, 8u);
  QCOMPARE(parseGpus("A100-80GB", m, n), std::string());
  QCOMPARE(n, 1u);
  QVERIFY(parseGpus("V100x2", m, n).find("unknown GPU model \"V100\"") != std::string::npos);
}

QTEST_APPLESS_MAIN(GpuTest)
