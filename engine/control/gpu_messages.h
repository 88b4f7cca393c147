// The GPU view and the layout planner as control-plane messages: shared by
// the local client (console, embedded engine) and, through it, the gRPC
// service.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "gpu/gpu_status.h"
#include "gpu/planner.h"
#include "spillway/v1/control.pb.h"

namespace spillway::control {

v1::GpuState gpuState(const gpu::GpuStatus& status);
// Plans for the request's GPUs (or, without any, the inventory's GPUs that
// the catalog knows). InvalidArgument naming the bad field.
absl::StatusOr<v1::PlanLayoutResponse> planLayout(const v1::PlanLayoutRequest& request, const gpu::Inventory& inventory);
// The busiest GPU's utilisation (the console's GPU alert reads it), or
// nothing when no GPU reports one.
std::optional<double> peakGpuUtilisation(const v1::GpuState& state);

}  // namespace spillway::control
