#include "control/control_server.h"

#include "common/files.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdlib.h>
#include <sys/stat.h>
#include <thread>

#include "absl/strings/ascii.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "common/url.h"
#include "control/auth.h"
#include "control/local_client.h"
#include "control/tls.h"
#include "spillway/v1/control.grpc.pb.h"

namespace spillway::control {
namespace {

grpc::Status toGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Streams a snapshot every interval until the client goes away.
class Watcher final : public grpc::ServerWriteReactor<v1::MetricsSnapshot> {
 public:
  Watcher(Engine& engine, std::string actor, std::chrono::milliseconds interval)
      : client_(engine, std::move(actor)), interval_(interval) {
    // The first message goes out at once, with rates over the engine's last
    // one to two seconds; the next ones every `interval`.
    client_.rebase(engine.recentTotals());
    thread_ = std::thread([this] { loop(); });
  }

  void OnWriteDone(bool ok) override {
    common::MutexLock lock(mu_);
    writing_ = false;
    write_ok_ = ok;
    cv_.notify_all();
  }
  void OnCancel() override {
    common::MutexLock lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }
  void OnDone() override {
    thread_.join();  // it called Finish and is exiting
    delete this;
  }

 private:
  void loop() {
    common::MutexLock lock(mu_);
    bool ok = true;
    for (bool first = true; ok; first = false) {
      if (!first && cv_.wait_for(lock, interval_, [&] {
        mu_.assertHeld();
        return cancelled_;
      })) break;
      if (cancelled_) break;
      auto snap = client_.snapshot();
      if (!snap.ok()) break;
      message_ = std::move(*snap);
      writing_ = true;
      StartWrite(&message_);
      cv_.wait(lock, [&] {
        mu_.assertHeld();
        return !writing_ || cancelled_;
      });
      ok = !cancelled_ && write_ok_;
    }
    const bool cancelled = cancelled_;
    lock.unlock();
    Finish(cancelled ? grpc::Status::CANCELLED : grpc::Status::OK);
  }

  LocalEngineClient client_;
  const std::chrono::milliseconds interval_;
  common::Mutex mu_;
  common::CondVar cv_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  v1::MetricsSnapshot message_;
  std::thread thread_;
};

class Service final : public v1::ControlPlane::CallbackService {
 public:
  Service(Engine& engine, const TokenAuthority& auth) : engine_(engine), auth_(auth) {}

#define SPILLWAY_UNARY(Method, Req, Resp, role, call)                                                  \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const v1::Req* req, v1::Resp* resp) \
      override {                                                                                       \
    auto* reactor = ctx->DefaultReactor();                                                             \
    reactor->Finish(run(ctx, role, #Method, resp, [&](LocalEngineClient& c) { return call; }));      \
    return reactor;                                                                                    \
  }

  SPILLWAY_UNARY(GetStatus, GetStatusRequest, Status, Role::kViewer, c.status())
  SPILLWAY_UNARY(GetConfig, GetConfigRequest, ConfigView, Role::kViewer, c.getConfig())
  SPILLWAY_UNARY(ValidateConfig, ConfigSource, ValidationResult, Role::kViewer, c.validateConfig(*req))
  SPILLWAY_UNARY(DiffConfig, ConfigSource, DiffResult, Role::kViewer, c.diffConfig(*req))
  SPILLWAY_UNARY(ApplyConfig, ApplyConfigRequest, ApplyConfigResponse, Role::kOperator, c.applyConfig(*req))
  SPILLWAY_UNARY(ListConfigVersions, ListConfigVersionsRequest, ConfigVersionList, Role::kViewer,
                 c.listConfigVersions(req->limit()))
  SPILLWAY_UNARY(Rollback, RollbackRequest, ApplyConfigResponse, Role::kOperator, c.rollback(*req))
  SPILLWAY_UNARY(ListBackends, ListBackendsRequest, BackendList, Role::kViewer, c.listBackends())
  SPILLWAY_UNARY(DrainBackend, BackendRequest, BackendList, Role::kOperator, c.setBackendDrained(req->name(), true))
  SPILLWAY_UNARY(UndrainBackend, BackendRequest, BackendList, Role::kOperator,
                 c.setBackendDrained(req->name(), false))
  SPILLWAY_UNARY(EjectBackend, EjectBackendRequest, BackendList, Role::kOperator, c.ejectBackend(*req))
  SPILLWAY_UNARY(SetBackendWeight, SetBackendWeightRequest, BackendList, Role::kOperator, c.setBackendWeight(*req))
  SPILLWAY_UNARY(QueryHistory, QueryHistoryRequest, HistorySeries, Role::kViewer, c.queryHistory(*req))
  SPILLWAY_UNARY(ListAuditEvents, ListAuditEventsRequest, AuditEventList, Role::kViewer, c.listAuditEvents(*req))
  SPILLWAY_UNARY(GetUsage, GetUsageRequest, UsageReport, Role::kViewer, c.getUsage(*req))
  SPILLWAY_UNARY(GetFleet, GetFleetRequest, FleetState, Role::kViewer, c.getFleet())
  SPILLWAY_UNARY(GetAdmission, GetAdmissionRequest, AdmissionState, Role::kViewer, c.getAdmission())
  SPILLWAY_UNARY(PinDegradation, PinDegradationRequest, AdmissionState, Role::kOperator, c.pinDegradation(*req))
  SPILLWAY_UNARY(GetCache, GetCacheRequest, CacheState, Role::kViewer, c.getCache())
  SPILLWAY_UNARY(LookupCache, LookupCacheRequest, CacheLookup, Role::kViewer, c.lookupCache(*req))
  SPILLWAY_UNARY(ListGpus, ListGpusRequest, GpuState, Role::kViewer, c.listGpus())
  SPILLWAY_UNARY(PlanLayout, PlanLayoutRequest, PlanLayoutResponse, Role::kViewer, c.planLayout(*req))
  SPILLWAY_UNARY(PurgeCache, PurgeCacheRequest, PurgeCacheResponse, Role::kOperator, c.purgeCache(*req))
#undef SPILLWAY_UNARY

  grpc::ServerWriteReactor<v1::MetricsSnapshot>* WatchMetrics(grpc::CallbackServerContext* ctx,
                                                              const v1::WatchMetricsRequest* req) override {
    Identity who;
    grpc::Status st = authorize(ctx, Role::kViewer, "WatchMetrics", &who);
    if (!st.ok()) {
      struct Refuse final : grpc::ServerWriteReactor<v1::MetricsSnapshot> {
        explicit Refuse(grpc::Status s) { Finish(std::move(s)); }
        void OnDone() override { delete this; }
      };
      return new Refuse(st);
    }
    const uint32_t ms = req->interval_ms() ? std::max<uint32_t>(100, req->interval_ms()) : 1000;
    return new Watcher(engine_, who.name, std::chrono::milliseconds(ms));
  }

 private:
  grpc::Status authorize(grpc::CallbackServerContext* ctx, Role need, const char* method, Identity* who) {
    std::string token;
    const auto& md = ctx->client_metadata();
    if (auto it = md.find("authorization"); it != md.end()) {
      std::string_view v(it->second.data(), it->second.size());
      if (v.rfind("Bearer ", 0) == 0) token = std::string(v.substr(7));
    }
    auto id = auth_.identify(token);
    if (!id) {
      engine_.recordAudit("unknown", "control.denied", method, ctx->peer(), "denied: unauthenticated");
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          token.empty() ? "no bearer token: send \"authorization: Bearer <token>\""
                                        : "unknown token");
    }
    if (static_cast<int>(id->role) < static_cast<int>(need)) {
      engine_.recordAudit(id->name, "control.denied", method, "", "denied: needs the operator role");
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          common::strCat(method, " needs the operator role; token \"", id->name, "\" is a viewer"));
    }
    *who = *id;
    return grpc::Status::OK;
  }

  template <typename Resp, typename Fn>
  grpc::Status run(grpc::CallbackServerContext* ctx, Role need, const char* method, Resp* resp, Fn&& fn) {
    Identity who;
    if (auto st = authorize(ctx, need, method, &who); !st.ok()) return st;
    LocalEngineClient client(engine_, who.name);
    auto r = fn(client);
    if (!r.ok()) return toGrpc(r.status());
    *resp = std::move(*r);
    return grpc::Status::OK;
  }

  Engine& engine_;
  const TokenAuthority& auth_;
};


}  // namespace

struct ControlServer::Impl {
  std::unique_ptr<TokenAuthority> auth;
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool tls = false;
  std::string fingerprint;
  std::string generated_token, generated_token_file;
  std::string owned_dir;  // a temporary directory made for the token file: removed with the server
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() {
  if (impl_->server) impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (!impl_->owned_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->owned_dir, ec);  // the token dies with the server
  }
}

namespace {

// The configured tokens with each token_file read and hashed into sha256.
absl::StatusOr<google::protobuf::RepeatedPtrField<v1::ControlToken>> resolveTokenFiles(
    const google::protobuf::RepeatedPtrField<v1::ControlToken>& configured) {
  google::protobuf::RepeatedPtrField<v1::ControlToken> out = configured;
  for (int i = 0; i < out.size(); ++i) {
    v1::ControlToken& t = out[i];
    if (t.token_file().empty()) continue;
    std::ifstream in(t.token_file());
    if (!in) {
      return absl::FailedPreconditionError(common::strCat("control.tokens[", i, "].token_file: cannot read \"",
                                                          t.token_file(), "\""));
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string token(absl::StripAsciiWhitespace(text.str()));
    if (token.empty()) {
      return absl::FailedPreconditionError(
          common::strCat("control.tokens[", i, "].token_file: \"", t.token_file(), "\" is empty"));
    }
    t.set_sha256(common::sha256Hex(token));
    t.clear_token_file();
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::start(Engine& engine, const ControlServerOptions& o) {
  auto hp = common::parseHostPort(o.control.listen());
  if (!hp.ok()) return absl::InvalidArgumentError(common::strCat("control.listen: ", hp.status().message()));
  auto impl = std::make_unique<Impl>();
  auto tokens = resolveTokenFiles(o.control.tokens());
  if (!tokens.ok()) return tokens.status();
  impl->auth = std::make_unique<TokenAuthority>(*tokens);
  if (impl->auth->size() == 0) {
    // Never printed or logged: written to a file only its owner can read,
    // in the data dir or else a fresh private temporary directory.
    impl->generated_token = impl->auth->addGenerated("generated-operator", Role::kOperator);
    std::string dir = o.data_dir;
    std::error_code ec;
    if (dir.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path(ec) / "spillway-XXXXXX").string();
      if (!mkdtemp(tmpl.data())) return absl::UnavailableError("cannot create a directory for the control token");
      dir = tmpl;
      impl->owned_dir = tmpl;
    }
    std::filesystem::create_directories(dir, ec);
    impl->generated_token_file = (std::filesystem::path(dir) / "control.token").string();
    if (auto st = common::writePrivateFile(impl->generated_token_file, impl->generated_token + "\n", 0600); !st.ok()) {
      return st;
    }
  }

  std::shared_ptr<grpc::ServerCredentials> creds;
  const bool want_tls = !o.control.tls_cert_file().empty() || o.control.generate_self_signed();
  if (!want_tls && !common::isLoopbackHost(hp->host)) {
    return absl::InvalidArgumentError("control.listen: a non-loopback control address needs TLS");
  }
  if (want_tls) {
    absl::StatusOr<TlsMaterial> tls = !o.control.tls_cert_file().empty()
                                          ? loadTls(o.control.tls_cert_file(), o.control.tls_key_file())
                                          : loadOrCreateSelfSigned(o.data_dir.empty() ? "." : o.data_dir, hp->host);
    if (!tls.ok()) return tls.status();
    grpc::SslServerCredentialsOptions opts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    opts.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
    if (!o.control.tls_client_ca_file().empty()) {
      auto ca = readFile(o.control.tls_client_ca_file());
      if (!ca.ok()) return ca.status();
      opts.pem_root_certs = *ca;
      opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(opts);
    impl->tls = true;
    impl->fingerprint = tls->fingerprint;
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  impl->service = std::make_unique<Service>(engine, *impl->auth);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.control.listen(), creds, &impl->port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(common::strCat("cannot listen for the control plane on ", o.control.listen()));
  }
  spdlog::info("control plane on {}:{} ({})", hp->host, impl->port,
               impl->tls ? "TLS, certificate SHA-256 " + impl->fingerprint : "plaintext, loopback only");
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

uint16_t ControlServer::port() const { return static_cast<uint16_t>(impl_->port); }
bool ControlServer::tls() const { return impl_->tls; }
std::string ControlServer::fingerprint() const { return impl_->fingerprint; }
std::string ControlServer::generatedToken() const { return impl_->generated_token; }
std::string ControlServer::generatedTokenFile() const { return impl_->generated_token_file; }

}  // namespace spillway::control
