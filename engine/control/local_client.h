// EngineClient over an Engine in this process. Changes are recorded in the
// audit log under `actor`. Thread-safe.
#pragma once

#include <string>

#include "common/mutex.h"
#include "control/engine_client.h"
#include "engine.h"

namespace spillway::control {

class LocalEngineClient final : public EngineClient {
 public:
  LocalEngineClient(Engine& engine, std::string actor);
  // The next snapshot()'s rates start from `baseline` instead of from the
  // previous snapshot (e.g. Engine::recentTotals(), for a first snapshot
  // that covers a real interval).
  void rebase(EngineTotals baseline);

  absl::StatusOr<v1::Status> status() override;
  absl::StatusOr<v1::MetricsSnapshot> snapshot() override;
  absl::StatusOr<v1::ConfigView> getConfig() override;
  absl::StatusOr<v1::ValidationResult> validateConfig(const v1::ConfigSource& source) override;
  absl::StatusOr<v1::DiffResult> diffConfig(const v1::ConfigSource& source) override;
  absl::StatusOr<v1::ApplyConfigResponse> applyConfig(const v1::ApplyConfigRequest& request) override;
  absl::StatusOr<v1::ConfigVersionList> listConfigVersions(uint32_t limit) override;
  absl::StatusOr<v1::ApplyConfigResponse> rollback(const v1::RollbackRequest& request) override;
  absl::StatusOr<v1::BackendList> listBackends() override;
  absl::StatusOr<v1::BackendList> setBackendDrained(const std::string& name, bool drained) override;
  absl::StatusOr<v1::BackendList> ejectBackend(const v1::EjectBackendRequest& request) override;
  absl::StatusOr<v1::BackendList> setBackendWeight(const v1::SetBackendWeightRequest& request) override;
  absl::StatusOr<v1::AdmissionState> getAdmission() override;
  absl::StatusOr<v1::AdmissionState> pinDegradation(const v1::PinDegradationRequest& request) override;
  absl::StatusOr<v1::CacheState> getCache() override;
  absl::StatusOr<v1::CacheLookup> lookupCache(const v1::LookupCacheRequest& request) override;
  absl::StatusOr<v1::PurgeCacheResponse> purgeCache(const v1::PurgeCacheRequest& request) override;
  absl::StatusOr<v1::GpuState> listGpus() override;
  absl::StatusOr<v1::PlanLayoutResponse> planLayout(const v1::PlanLayoutRequest& request) override;
  absl::StatusOr<v1::HistorySeries> queryHistory(const v1::QueryHistoryRequest& request) override;
  absl::StatusOr<v1::AuditEventList> listAuditEvents(const v1::ListAuditEventsRequest& request) override;
  absl::StatusOr<v1::UsageReport> getUsage(const v1::GetUsageRequest& request) override;
  absl::StatusOr<v1::FleetState> getFleet() override;

  // The config with secrets (api_key) removed: what GetConfig may return.
  static v1::Config redacted(v1::Config c);

 private:
  // A source as a config message; YAML errors come back located.
  absl::StatusOr<v1::Config> resolve(const v1::ConfigSource& source, std::vector<std::string>* errors);

  Engine& engine_;
  const std::string actor_;
  common::Mutex mu_;
  EngineTotals previous_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::control
