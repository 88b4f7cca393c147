// EngineClient over the gRPC control plane, for spillctl and the console's
// fleet view. Errors explain themselves: an unreachable engine, a
// certificate that does not match, a refused token.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "control/engine_client.h"

namespace spillway::control {

struct GrpcClientOptions {
  std::string address;            // "HOST:PORT"
  std::string token;              // bearer token
  bool tls = false;               // use TLS (implied by ca_file)
  std::string ca_file;            // PEM CA / self-signed certificate to trust ("" = system roots)
  std::string server_name;        // expected name in the certificate ("" = the host)
  std::string client_cert_file;   // mutual TLS
  std::string client_key_file;
  std::chrono::milliseconds timeout{10000};
};

class GrpcEngineClient final : public EngineClient {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcEngineClient>> connect(const GrpcClientOptions& options);
  ~GrpcEngineClient() override;

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

  // Streams snapshots every `interval` until `on_snapshot` returns false or
  // the stream ends; returns why it ended.
  absl::Status watch(std::chrono::milliseconds interval,
                     const std::function<bool(const v1::MetricsSnapshot&)>& on_snapshot);

  struct Impl;

 private:
  explicit GrpcEngineClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::control
