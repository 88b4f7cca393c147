#include "control/gpu_messages.h"

#include <algorithm>

#include "common/strings.h"

namespace spillway::control {

v1::GpuState gpuState(const gpu::GpuStatus& status) {
  v1::GpuState out;
  out.set_source(status.source);
  out.set_detail(status.detail);
  out.set_read_ms(status.read_ms);
  for (const auto& g : status.gpus) {
    auto* m = out.add_gpus();
    m->set_index(g.device.index);
    m->set_name(g.device.name);
    m->set_uuid(g.device.uuid);
    m->set_model(g.device.model);
    m->set_memory_total_bytes(g.device.memory_total_bytes);
    m->set_memory_used_bytes(g.device.memory_used_bytes);
    m->set_utilization(g.device.utilization);
    m->set_temperature_c(g.device.temperature_c);
    m->set_power_watts(g.device.power_watts);
    m->set_mig_enabled(g.device.mig_enabled);
    m->set_mig_pending(g.device.mig_pending);
    for (const auto& b : g.backends) m->add_backends(b);
    m->set_in_flight(g.in_flight);
    for (const auto& i : g.instances) {
      auto* x = m->add_instances();
      x->set_uuid(i.mig.uuid);
      x->set_gpu_instance_id(i.mig.gpu_instance_id);
      x->set_compute_instance_id(i.mig.compute_instance_id);
      x->set_profile(i.mig.profile);
      x->set_profile_id(i.mig.profile_id);
      x->set_start(i.mig.start);
      x->set_memory_slices(static_cast<uint32_t>(i.mig.memory_slices));
      x->set_compute_slices(static_cast<uint32_t>(i.mig.compute_slices));
      x->set_memory_bytes(i.mig.memory_bytes);
      x->set_sm_count(static_cast<uint32_t>(i.mig.sm_count));
      for (const auto& b : i.backends) x->add_backends(b);
      x->set_in_flight(i.in_flight);
      x->set_capacity(i.capacity);
      x->set_utilization(i.utilization);
      x->set_queued(i.queued);
      for (const auto& c : i.classes) x->add_classes(c);
    }
  }
  for (const auto& w : status.workers) {
    auto* m = out.add_workers();
    m->set_backend(w.name);
    m->set_instance(w.instance);
    m->set_state(w.state);
    m->set_pid(w.pid);
    m->set_port(w.port);
    m->set_restarts(w.restarts);
    m->set_last_error(w.last_error);
    m->set_next_restart_ms(w.next_restart_ms);
  }
  return out;
}

absl::StatusOr<v1::PlanLayoutResponse> planLayout(const v1::PlanLayoutRequest& request, const gpu::Inventory& inventory) {
  std::vector<const gpu::GpuModel*> gpus;
  for (int i = 0; i < request.gpus_size(); ++i) {
    const auto& g = request.gpus(i);
    const gpu::GpuModel* m = gpu::findModel(g.model());
    if (!m) {
      return absl::InvalidArgumentError(common::strCat("gpus[", i, "].model: unknown GPU model \"", g.model(),
                                                       "\"; expected one of: ", gpu::modelNames()));
    }
    const uint32_t count = g.count() ? g.count() : 1;
    if (count > 64) return absl::InvalidArgumentError(common::strCat("gpus[", i, "].count: at most 64"));
    gpus.insert(gpus.end(), count, m);
  }
  if (gpus.empty()) {
    for (const auto& g : inventory.gpus) {
      if (const gpu::GpuModel* m = gpu::findModel(g.model)) gpus.push_back(m);
    }
    if (gpus.empty()) {
      return absl::InvalidArgumentError(
          "no GPUs to plan for: the engine's inventory has none the catalog knows; name them (e.g. A100-80GB x 1)");
    }
  }
  std::vector<gpu::Demand> demands;
  for (int i = 0; i < request.demands_size(); ++i) {
    const auto& d = request.demands(i);
    const std::string& pr = d.priority();
    if (!pr.empty() && pr != "critical" && pr != "standard" && pr != "sheddable") {
      return absl::InvalidArgumentError(common::strCat("demands[", i, "].priority: must be critical, standard or "
                                                       "sheddable, got \"", pr, "\""));
    }
    demands.push_back({d.name().empty() ? common::strCat("demand", i + 1) : d.name(), pr.empty() ? "standard" : pr,
                       d.memory_gb(), d.share()});
  }
  const int alternatives = static_cast<int>(request.alternatives() ? std::min(request.alternatives(), 10u) : 3u);
  const gpu::Plan plan = gpu::plan(gpus, demands, alternatives);
  if (!plan.error.empty()) return absl::InvalidArgumentError(plan.error);
  v1::PlanLayoutResponse out;
  out.set_elapsed_ms(plan.elapsed_ms);
  out.set_text(gpu::formatPlan(plan));
  const int total = gpu::kComputeSlices * static_cast<int>(gpus.size());
  for (const auto& l : plan.layouts) {
    auto* m = out.add_layouts();
    m->set_score(l.score);
    m->set_balance(l.balance);
    m->set_wasted_memory_gb(l.wasted_memory_gb);
    m->set_unused_compute_slices(static_cast<uint32_t>(l.unused_compute));
    for (size_t g = 0; g < l.gpus.size(); ++g) {
      auto* pg = m->add_gpus();
      pg->set_index(static_cast<uint32_t>(g));
      pg->set_model(l.gpus[g].model->name);
      for (const auto& pi : l.gpus[g].instances) {
        auto* x = pg->add_instances();
        x->set_profile(pi.at.profile->name);
        x->set_profile_id(pi.at.profile->id);
        x->set_start(static_cast<uint32_t>(pi.at.start));
        x->set_memory_slices(static_cast<uint32_t>(pi.at.profile->memory_slices));
        x->set_compute_slices(static_cast<uint32_t>(pi.at.profile->compute_slices));
        x->set_demand(pi.demand >= 0 ? plan.demands[pi.demand].name : "");
      }
    }
    const std::string cmds = gpu::nvidiaSmiCommands(l);
    for (size_t pos = 0; pos < cmds.size();) {
      const size_t nl = cmds.find('\n', pos);
      const size_t end = nl == std::string::npos ? cmds.size() : nl;
      if (end > pos) m->add_commands(cmds.substr(pos, end - pos));
      pos = end + 1;
    }
    m->set_mig_parted(gpu::migPartedConfig(l));
    m->set_placement_yaml(gpu::placementYaml(plan.demands, l));
    for (size_t d = 0; d < plan.demands.size(); ++d) {
      auto* c = m->add_capacity();
      c->set_demand(plan.demands[d].name);
      c->set_compute_slices(static_cast<uint32_t>(l.capacity[d]));
      c->set_instances(static_cast<uint32_t>(l.instances[d]));
      c->set_share_of_capacity(static_cast<double>(l.capacity[d]) / total);
      c->set_share_of_traffic(plan.demands[d].share);
    }
  }
  return out;
}

std::optional<double> peakGpuUtilisation(const v1::GpuState& state) {
  std::optional<double> peak;
  for (const auto& g : state.gpus()) {
    if (g.utilization() >= 0) peak = std::max(peak.value_or(0), g.utilization());
  }
  return peak;
}

}  // namespace spillway::control
