// One way to see and steer an engine, whether it runs in this process
// (LocalEngineClient) or elsewhere (GrpcEngineClient). The console and
// spillctl are written against this interface only. Messages are the
// control-plane protos, so both sides speak exactly the same shapes.
//
// Errors are absl::Status values with the codes the control plane uses:
// InvalidArgument (bad config, every error listed), FailedPrecondition
// (stale base version), NotFound, PermissionDenied, Unauthenticated,
// Unavailable (engine unreachable).
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "spillway/v1/control.pb.h"

namespace spillway::control {

class EngineClient {
 public:
  virtual ~EngineClient() = default;

  virtual absl::StatusOr<v1::Status> status() = 0;
  // Totals, and rates over an interval: locally, since the previous snapshot
  // taken through this client; over gRPC, the latest of a 1 s metrics
  // stream (the same snapshot again until the next one arrives).
  virtual absl::StatusOr<v1::MetricsSnapshot> snapshot() = 0;
  virtual absl::StatusOr<v1::ConfigView> getConfig() = 0;
  virtual absl::StatusOr<v1::ValidationResult> validateConfig(const v1::ConfigSource& source) = 0;
  virtual absl::StatusOr<v1::DiffResult> diffConfig(const v1::ConfigSource& source) = 0;
  virtual absl::StatusOr<v1::ApplyConfigResponse> applyConfig(const v1::ApplyConfigRequest& request) = 0;
  virtual absl::StatusOr<v1::ConfigVersionList> listConfigVersions(uint32_t limit) = 0;
  virtual absl::StatusOr<v1::ApplyConfigResponse> rollback(const v1::RollbackRequest& request) = 0;
  virtual absl::StatusOr<v1::BackendList> listBackends() = 0;
  virtual absl::StatusOr<v1::BackendList> setBackendDrained(const std::string& name, bool drained) = 0;
  virtual absl::StatusOr<v1::BackendList> ejectBackend(const v1::EjectBackendRequest& request) = 0;
  virtual absl::StatusOr<v1::BackendList> setBackendWeight(const v1::SetBackendWeightRequest& request) = 0;
  virtual absl::StatusOr<v1::HistorySeries> queryHistory(const v1::QueryHistoryRequest& request) = 0;
  virtual absl::StatusOr<v1::AuditEventList> listAuditEvents(const v1::ListAuditEventsRequest& request) = 0;
  virtual absl::StatusOr<v1::UsageReport> getUsage(const v1::GetUsageRequest& request) = 0;
  virtual absl::StatusOr<v1::FleetState> getFleet() = 0;
  virtual absl::StatusOr<v1::AdmissionState> getAdmission() = 0;
  virtual absl::StatusOr<v1::AdmissionState> pinDegradation(const v1::PinDegradationRequest& request) = 0;
  virtual absl::StatusOr<v1::CacheState> getCache() = 0;
  virtual absl::StatusOr<v1::CacheLookup> lookupCache(const v1::LookupCacheRequest& request) = 0;
  virtual absl::StatusOr<v1::PurgeCacheResponse> purgeCache(const v1::PurgeCacheRequest& request) = 0;
  virtual absl::StatusOr<v1::GpuState> listGpus() = 0;
  virtual absl::StatusOr<v1::PlanLayoutResponse> planLayout(const v1::PlanLayoutRequest& request) = 0;
};

using EngineClientPtr = std::unique_ptr<EngineClient>;

}  // namespace spillway::control
