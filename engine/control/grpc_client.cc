#include "control/grpc_client.h"

#include <grpcpp/grpcpp.h>

#include <optional>
#include <thread>

#include "common/mutex.h"
#include "common/strings.h"
#include "common/url.h"
#include "control/tls.h"
#include "spillway/v1/control.grpc.pb.h"

namespace spillway::control {

struct GrpcEngineClient::Impl {
  GrpcClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ControlPlane::Stub> stub;

  // The metrics feed behind snapshot(): one WatchMetrics stream at 1 s, kept
  // open by a thread and reopened after a failure, so each snapshot's rates
  // cover the second before it and reading one never waits on the network.
  common::Mutex feed_mu;
  common::CondVar feed_cv;
  std::thread feed;                            // started by the first snapshot()
  bool feed_stop ABSL_GUARDED_BY(feed_mu) = false;
  grpc::ClientContext* feed_ctx ABSL_GUARDED_BY(feed_mu) = nullptr;  // the open stream, to cancel
  std::optional<v1::MetricsSnapshot> latest ABSL_GUARDED_BY(feed_mu);
  std::chrono::steady_clock::time_point latest_at ABSL_GUARDED_BY(feed_mu);  // when it arrived
  absl::Status feed_error ABSL_GUARDED_BY(feed_mu);  // why the stream is down

  static constexpr std::chrono::seconds kStaleAfter{5};  // five missed 1 s snapshots

  void runFeed() {
    common::MutexLock lock(feed_mu);
    while (!feed_stop) {
      grpc::ClientContext ctx;
      prepare(ctx, /*deadline=*/false);
      feed_ctx = &ctx;
      lock.unlock();
      v1::WatchMetricsRequest req;
      req.set_interval_ms(1000);
      auto reader = stub->WatchMetrics(&ctx, req);
      v1::MetricsSnapshot s;
      while (reader->Read(&s)) {
        common::MutexLock l(feed_mu);
        latest = s;
        latest_at = std::chrono::steady_clock::now();
        feed_error = absl::OkStatus();
        feed_cv.notify_all();
      }
      grpc::Status st = reader->Finish();
      lock.lock();
      feed_ctx = nullptr;
      if (feed_stop) break;
      feed_error = st.ok() ? absl::UnavailableError(common::strCat("the engine at ", options.address,
                                                                   " ended the metrics stream"))
                           : convert(st);
      latest.reset();
      feed_cv.notify_all();
      feed_cv.wait_for(lock, std::chrono::seconds(1), [&] {
        feed_mu.assertHeld();
        return feed_stop;
      });  // then reconnect
    }
  }

  absl::StatusOr<v1::MetricsSnapshot> snapshot() {
    common::MutexLock lock(feed_mu);
    if (!feed.joinable()) feed = std::thread([this] { runFeed(); });
    // Only the first call (or one right after a failure) waits, for the
    // stream's first message or its error.
    feed_cv.wait_for(lock, options.timeout + std::chrono::seconds(1),
                     [&] {
                       feed_mu.assertHeld();
                       return latest.has_value() || !feed_error.ok();
                     });
    if (latest) {
      // A stream that stays open but stops sending (a hung engine) must not
      // pass its last numbers off as current.
      const auto age = std::chrono::steady_clock::now() - latest_at;
      if (age > kStaleAfter) {
        return absl::DeadlineExceededError(common::strCat(
            "no metrics from the engine at ", options.address, " for ",
            std::chrono::duration_cast<std::chrono::seconds>(age).count(), " s"));
      }
      return *latest;
    }
    if (!feed_error.ok()) return feed_error;
    return absl::DeadlineExceededError(common::strCat("no metrics from the engine at ", options.address, " within ",
                                                      options.timeout.count(), " ms"));
  }

  ~Impl() {
    {
      common::MutexLock lock(feed_mu);
      feed_stop = true;
      if (feed_ctx) feed_ctx->TryCancel();
    }
    feed_cv.notify_all();
    if (feed.joinable()) feed.join();
  }

  void prepare(grpc::ClientContext& ctx, bool deadline = true) const {
    if (!options.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options.token);
    if (deadline) ctx.set_deadline(std::chrono::system_clock::now() + options.timeout);
  }

  absl::Status convert(const grpc::Status& s) const {
    if (s.ok()) return absl::OkStatus();
    std::string msg = s.error_message();
    switch (s.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        if (msg.find("ssl") != std::string::npos || msg.find("SSL") != std::string::npos ||
            msg.find("handshake") != std::string::npos || msg.find("certificate") != std::string::npos) {
          msg = common::strCat("TLS with ", options.address, " failed (is the certificate trusted, and does it "
                               "name this host? use --ca / --server-name): ", msg);
        } else {
          msg = common::strCat("cannot reach the engine at ", options.address, ": ", msg);
        }
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        msg = common::strCat("the engine at ", options.address, " did not answer within ", options.timeout.count(),
                             " ms (is it a Spillway control port? plaintext to a TLS port hangs like this)");
        break;
      case grpc::StatusCode::UNAUTHENTICATED:
        msg = common::strCat("the engine refused the token: ", msg, " (set --token or SPILLCTL_TOKEN)");
        break;
      default:
        break;
    }
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), msg);
  }

  template <typename Req, typename Resp, typename Call>
  absl::StatusOr<Resp> unary(const Req& req, Call call) const {
    grpc::ClientContext ctx;
    prepare(ctx);
    Resp resp;
    grpc::Status s = (stub.get()->*call)(&ctx, req, &resp);
    if (!s.ok()) return convert(s);
    return resp;
  }
};

GrpcEngineClient::GrpcEngineClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcEngineClient::~GrpcEngineClient() = default;

absl::StatusOr<std::unique_ptr<GrpcEngineClient>> GrpcEngineClient::connect(const GrpcClientOptions& o) {
  auto hp = common::parseHostPort(o.address);
  if (!hp.ok()) return absl::InvalidArgumentError(common::strCat("address: ", hp.status().message()));
  auto impl = std::make_unique<Impl>();
  impl->options = o;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  if (o.tls || !o.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!o.ca_file.empty()) {
      auto ca = readFile(o.ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!o.client_cert_file.empty()) {
      auto cert = readFile(o.client_cert_file);
      auto key = readFile(o.client_key_file);
      if (!cert.ok()) return cert.status();
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  impl->channel = grpc::CreateCustomChannel(o.address, creds, args);
  impl->stub = v1::ControlPlane::NewStub(impl->channel);
  return std::unique_ptr<GrpcEngineClient>(new GrpcEngineClient(std::move(impl)));
}

using Stub = v1::ControlPlane::Stub;

absl::StatusOr<v1::Status> GrpcEngineClient::status() {
  return impl_->unary<v1::GetStatusRequest, v1::Status>(v1::GetStatusRequest(), &Stub::GetStatus);
}

absl::StatusOr<v1::MetricsSnapshot> GrpcEngineClient::snapshot() { return impl_->snapshot(); }

absl::StatusOr<v1::ConfigView> GrpcEngineClient::getConfig() {
  return impl_->unary<v1::GetConfigRequest, v1::ConfigView>(v1::GetConfigRequest(), &Stub::GetConfig);
}

absl::StatusOr<v1::ValidationResult> GrpcEngineClient::validateConfig(const v1::ConfigSource& source) {
  return impl_->unary<v1::ConfigSource, v1::ValidationResult>(source, &Stub::ValidateConfig);
}

absl::StatusOr<v1::DiffResult> GrpcEngineClient::diffConfig(const v1::ConfigSource& source) {
  return impl_->unary<v1::ConfigSource, v1::DiffResult>(source, &Stub::DiffConfig);
}

absl::StatusOr<v1::ApplyConfigResponse> GrpcEngineClient::applyConfig(const v1::ApplyConfigRequest& request) {
  return impl_->unary<v1::ApplyConfigRequest, v1::ApplyConfigResponse>(request, &Stub::ApplyConfig);
}

absl::StatusOr<v1::ConfigVersionList> GrpcEngineClient::listConfigVersions(uint32_t limit) {
  v1::ListConfigVersionsRequest r;
  r.set_limit(limit);
  return impl_->unary<v1::ListConfigVersionsRequest, v1::ConfigVersionList>(r, &Stub::ListConfigVersions);
}

absl::StatusOr<v1::ApplyConfigResponse> GrpcEngineClient::rollback(const v1::RollbackRequest& request) {
  return impl_->unary<v1::RollbackRequest, v1::ApplyConfigResponse>(request, &Stub::Rollback);
}

absl::StatusOr<v1::BackendList> GrpcEngineClient::listBackends() {
  return impl_->unary<v1::ListBackendsRequest, v1::BackendList>(v1::ListBackendsRequest(), &Stub::ListBackends);
}

absl::StatusOr<v1::BackendList> GrpcEngineClient::setBackendDrained(const std::string& name, bool drained) {
  v1::BackendRequest r;
  r.set_name(name);
  return impl_->unary<v1::BackendRequest, v1::BackendList>(r, drained ? &Stub::DrainBackend : &Stub::UndrainBackend);
}

absl::StatusOr<v1::BackendList> GrpcEngineClient::ejectBackend(const v1::EjectBackendRequest& request) {
  return impl_->unary<v1::EjectBackendRequest, v1::BackendList>(request, &Stub::EjectBackend);
}

absl::StatusOr<v1::BackendList> GrpcEngineClient::setBackendWeight(const v1::SetBackendWeightRequest& request) {
  return impl_->unary<v1::SetBackendWeightRequest, v1::BackendList>(request, &Stub::SetBackendWeight);
}

absl::StatusOr<v1::AdmissionState> GrpcEngineClient::getAdmission() {
  return impl_->unary<v1::GetAdmissionRequest, v1::AdmissionState>(v1::GetAdmissionRequest{}, &Stub::GetAdmission);
}

absl::StatusOr<v1::AdmissionState> GrpcEngineClient::pinDegradation(const v1::PinDegradationRequest& request) {
  return impl_->unary<v1::PinDegradationRequest, v1::AdmissionState>(request, &Stub::PinDegradation);
}

absl::StatusOr<v1::CacheState> GrpcEngineClient::getCache() {
  return impl_->unary<v1::GetCacheRequest, v1::CacheState>(v1::GetCacheRequest{}, &Stub::GetCache);
}

absl::StatusOr<v1::GpuState> GrpcEngineClient::listGpus() {
  return impl_->unary<v1::ListGpusRequest, v1::GpuState>(v1::ListGpusRequest{}, &Stub::ListGpus);
}

absl::StatusOr<v1::PlanLayoutResponse> GrpcEngineClient::planLayout(const v1::PlanLayoutRequest& request) {
  return impl_->unary<v1::PlanLayoutRequest, v1::PlanLayoutResponse>(request, &Stub::PlanLayout);
}

absl::StatusOr<v1::CacheLookup> GrpcEngineClient::lookupCache(const v1::LookupCacheRequest& request) {
  return impl_->unary<v1::LookupCacheRequest, v1::CacheLookup>(request, &Stub::LookupCache);
}

absl::StatusOr<v1::PurgeCacheResponse> GrpcEngineClient::purgeCache(const v1::PurgeCacheRequest& request) {
  return impl_->unary<v1::PurgeCacheRequest, v1::PurgeCacheResponse>(request, &Stub::PurgeCache);
}

absl::StatusOr<v1::HistorySeries> GrpcEngineClient::queryHistory(const v1::QueryHistoryRequest& request) {
  return impl_->unary<v1::QueryHistoryRequest, v1::HistorySeries>(request, &Stub::QueryHistory);
}

absl::StatusOr<v1::AuditEventList> GrpcEngineClient::listAuditEvents(const v1::ListAuditEventsRequest& request) {
  return impl_->unary<v1::ListAuditEventsRequest, v1::AuditEventList>(request, &Stub::ListAuditEvents);
}

absl::StatusOr<v1::UsageReport> GrpcEngineClient::getUsage(const v1::GetUsageRequest& request) {
  return impl_->unary<v1::GetUsageRequest, v1::UsageReport>(request, &Stub::GetUsage);
}

absl::StatusOr<v1::FleetState> GrpcEngineClient::getFleet() {
  return impl_->unary<v1::GetFleetRequest, v1::FleetState>(v1::GetFleetRequest(), &Stub::GetFleet);
}

absl::Status GrpcEngineClient::watch(std::chrono::milliseconds interval,
                                     const std::function<bool(const v1::MetricsSnapshot&)>& on_snapshot) {
  grpc::ClientContext ctx;
  impl_->prepare(ctx, /*deadline=*/false);
  v1::WatchMetricsRequest req;
  req.set_interval_ms(static_cast<uint32_t>(interval.count()));
  auto reader = impl_->stub->WatchMetrics(&ctx, req);
  v1::MetricsSnapshot s;
  while (reader->Read(&s)) {
    if (!on_snapshot(s)) {
      ctx.TryCancel();
      reader->Finish();
      return absl::OkStatus();
    }
  }
  return impl_->convert(reader->Finish());
}

}  // namespace spillway::control
