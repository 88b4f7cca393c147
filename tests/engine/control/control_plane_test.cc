// The gRPC control plane end to end on loopback: TLS with a certificate the
// server generates, each role against each kind of method, missing and
// unknown tokens, plaintext against the TLS port, secrets never returned,
// located YAML errors, optimistic concurrency, the metrics stream, audit.
#include "control_plane_test.h"

#include <QtTest>

#include <signal.h>

#include <QProcess>

#include "control/auth.h"
#include "control/control_server.h"
#include "control/grpc_client.h"
#include "engine.h"
#include "support/test_config.h"
#include "support/spillwayd_process.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::control;
using namespace spillway::testing;

namespace {

const std::string kViewerToken = "viewer-secret-token";
const std::string kOperatorToken = "operator-secret-token";

std::unique_ptr<GrpcEngineClient> client(uint16_t port, const std::string& token, const std::string& ca,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  GrpcClientOptions o;
  o.address = "127.0.0.1:" + std::to_string(port);
  o.token = token;
  o.ca_file = ca;
  o.server_name = "localhost";
  o.timeout = timeout;
  auto c = GrpcEngineClient::connect(o);
  if (!c.ok()) qFatal("connect");
  return std::move(*c);
}

// A control plane on loopback whose one operator token is read from `file`.
v1::Control controlWithTokenFile(const QString& file) {
  v1::Control ctl;
  ctl.set_listen("127.0.0.1:0");
  auto* t = ctl.add_tokens();
  t->set_name("kube");
  t->set_role("operator");
  t->set_token_file(file.toStdString());
  return ctl;
}

}  // namespace

void ControlPlaneTest::initTestCase() {
  QVERIFY(dir_.isValid());
  const std::string yaml = engineYaml(R"(  - name: a
    url: sim://a
    models: [m]
    api_key: sk-never-show-this
    sim: {profile: instant}
)", "control:\n  listen: 127.0.0.1:0\n  generate_self_signed: true\n  tokens:\n"
    "    - {name: vera, role: viewer, sha256: " + TokenAuthority::sha256Hex(kViewerToken) + "}\n"
    "    - {name: otto, role: operator, sha256: " + TokenAuthority::sha256Hex(kOperatorToken) + "}\n");
  auto e = Engine::start(configFromYaml(yaml), EngineOptions{dir_.path().toStdString(), "test"});
  QVERIFY2(e.ok(), std::string(e.status().message()).c_str());
  engine_ = std::move(*e);
  auto s = ControlServer::start(*engine_, {engine_->config().control(), dir_.path().toStdString()});
  QVERIFY2(s.ok(), std::string(s.status().message()).c_str());
  server_ = std::move(*s);
  QVERIFY(server_->tls());
  QVERIFY(server_->generatedToken().empty());  // tokens were configured
  cert_file_ = dir_.filePath("control-cert.pem").toStdString();
  QVERIFY(QFile::exists(QString::fromStdString(cert_file_)));
  QCOMPARE(QFile(dir_.filePath("control-key.pem")).permissions() & (QFile::ReadGroup | QFile::ReadOther),
           QFileDevice::Permissions());
  QCOMPARE(server_->fingerprint().size(), size_t{32 * 3 - 1});
}

void ControlPlaneTest::cleanupTestCase() {
  server_.reset();
  engine_.reset();
}

void ControlPlaneTest::viewerCanReadButNotChange() {
  auto c = client(server_->port(), kViewerToken, cert_file_);
  auto st = c->status();
  QVERIFY2(st.ok(), std::string(st.status().message()).c_str());
  QVERIFY(st->ready());
  QCOMPARE(st->config_version(), engine_->configVersion());
  QVERIFY(c->listBackends().ok());
  QVERIFY(c->getConfig().ok());
  QVERIFY(c->listConfigVersions(10).ok());
  QVERIFY(c->listAuditEvents({}).ok());
  v1::ApplyConfigRequest apply;
  apply.mutable_source()->set_yaml("backends: []");
  QCOMPARE(c->applyConfig(apply).status().code(), absl::StatusCode::kPermissionDenied);
  QCOMPARE(c->setBackendDrained("a", true).status().code(), absl::StatusCode::kPermissionDenied);
  v1::EjectBackendRequest eject;
  eject.set_name("a");
  eject.set_duration_ms(1000);
  QCOMPARE(c->ejectBackend(eject).status().code(), absl::StatusCode::kPermissionDenied);
  v1::SetBackendWeightRequest weight;
  weight.set_name("a");
  weight.set_weight(5);
  QCOMPARE(c->setBackendWeight(weight).status().code(), absl::StatusCode::kPermissionDenied);
  QCOMPARE(engine_->backends()[0].weight_override, -1);
  v1::RollbackRequest rb;
  rb.set_version(1);
  auto denied = c->rollback(rb);
  QCOMPARE(denied.status().code(), absl::StatusCode::kPermissionDenied);
  QVERIFY(std::string(denied.status().message()).find("needs the operator role") != std::string::npos);
  // The cache: readable, a lookup is a read; a purge is a change.
  QVERIFY(c->getCache().ok());
  v1::LookupCacheRequest lookup;
  lookup.set_body(R"({"model":"m","temperature":0,"messages":[{"role":"user","content":"x"}]})");
  auto found = c->lookupCache(lookup);
  QVERIFY2(found.ok(), std::string(found.status().message()).c_str());
  QCOMPARE(found->key().size(), size_t{32});
  v1::PurgeCacheRequest flush;
  flush.set_all(true);
  QCOMPARE(c->purgeCache(flush).status().code(), absl::StatusCode::kPermissionDenied);
  auto audit = engine_->audit({0, "control.denied", "vera", 10});
  QCOMPARE(audit.size(), size_t{6});
}

void ControlPlaneTest::operatorCanChange() {
  auto c = client(server_->port(), kOperatorToken, cert_file_);
  auto view = c->getConfig();
  QVERIFY(view.ok());
  v1::ApplyConfigRequest req;
  *req.mutable_source()->mutable_config() = view->config();
  req.mutable_source()->mutable_config()->mutable_backends(0)->set_weight(7);  // api_key left redacted
  req.set_comment("weight up");
  req.set_base_version(view->version());
  auto r = c->applyConfig(req);
  QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
  QVERIFY(r->version() > view->version());
  QCOMPARE(engine_->config().backends(0).weight(), 7u);
  // The redacted (empty) api_key in what GetConfig returned kept the secret.
  QCOMPARE(engine_->config().backends(0).api_key(), "sk-never-show-this");
  for (const auto& line : r->diff()) QVERIFY2(line.find("api_key") == std::string::npos, line.c_str());
  v1::PurgeCacheRequest purge;  // neither model, tenant nor `all`: refused, never an accidental flush
  QCOMPARE(c->purgeCache(purge).status().code(), absl::StatusCode::kInvalidArgument);
  purge.set_all(true);
  auto purged = c->purgeCache(purge);
  QVERIFY2(purged.ok(), std::string(purged.status().message()).c_str());
  QVERIFY(purged->cache().enabled());
  auto drained = c->setBackendDrained("a", true);
  QVERIFY(drained.ok());
  QCOMPARE(drained->backends(0).state(), "draining");
  QVERIFY(c->setBackendDrained("a", false).ok());
  QCOMPARE(c->setBackendDrained("zzz", true).status().code(), absl::StatusCode::kNotFound);
  v1::EjectBackendRequest eject;
  eject.set_name("a");
  eject.set_duration_ms(60'000);
  auto ejected = c->ejectBackend(eject);
  QVERIFY2(ejected.ok(), std::string(ejected.status().message()).c_str());
  QCOMPARE(ejected->backends(0).state(), "ejected");
  QVERIFY(ejected->backends(0).ejected_until_ms() > 0);
  eject.set_duration_ms(0);
  QCOMPARE(c->ejectBackend(eject)->backends(0).state(), "cooling_down");
  v1::SetBackendWeightRequest weight;
  weight.set_name("a");
  weight.set_weight(4);
  auto weighted = c->setBackendWeight(weight);
  QVERIFY(weighted.ok());
  QVERIFY(weighted->backends(0).weight_overridden());
  QCOMPARE(weighted->backends(0).weight_override(), 4u);
  weight.set_clear(true);
  QVERIFY(!c->setBackendWeight(weight)->backends(0).weight_overridden());
  weight.set_clear(false);
  weight.set_weight(20000);
  QCOMPARE(c->setBackendWeight(weight).status().code(), absl::StatusCode::kInvalidArgument);
  v1::RollbackRequest rb;
  rb.set_version(view->version());
  auto back = c->rollback(rb);
  QVERIFY2(back.ok(), std::string(back.status().message()).c_str());
  QCOMPARE(engine_->config().backends(0).weight(), 1u);
  auto events = engine_->audit({0, "", "otto", 20});
  QVERIFY(events.size() >= 8);  // apply, drain, undrain, failed drain, eject, readmit, 2 weights, rollback
}

void ControlPlaneTest::missingAndUnknownTokensAreRefusedAndAudited() {
  auto none = client(server_->port(), "", cert_file_);
  auto r1 = none->status();
  QCOMPARE(r1.status().code(), absl::StatusCode::kUnauthenticated);
  QVERIFY(std::string(r1.status().message()).find("no bearer token") != std::string::npos);
  auto wrong = client(server_->port(), "guess", cert_file_);
  auto r2 = wrong->listBackends();
  QCOMPARE(r2.status().code(), absl::StatusCode::kUnauthenticated);
  QVERIFY(std::string(r2.status().message()).find("unknown token") != std::string::npos);
  QCOMPARE(wrong->watch(std::chrono::milliseconds(100), [](const auto&) { return true; }).code(),
           absl::StatusCode::kUnauthenticated);
  QVERIFY(engine_->audit({0, "control.denied", "unknown", 10}).size() >= 3);
}

void ControlPlaneTest::plaintextToTheTlsPortFailsClearly() {
  GrpcClientOptions o;
  o.address = "127.0.0.1:" + std::to_string(server_->port());
  o.token = kViewerToken;
  o.timeout = std::chrono::milliseconds(1500);
  auto c = GrpcEngineClient::connect(o);
  QVERIFY(c.ok());
  auto r = (*c)->status();
  QVERIFY(!r.ok());
  QVERIFY(r.status().code() == absl::StatusCode::kUnavailable ||
          r.status().code() == absl::StatusCode::kDeadlineExceeded);
  // Said plainly, with the address (gRPC's own words follow).
  QVERIFY2(std::string(r.status().message()).rfind("cannot reach the engine at " + o.address, 0) == 0,
           std::string(r.status().message()).c_str());
  // The failure is the TLS mismatch and nothing else: the same client, same
  // token, against a plaintext control server of the same engine, works;
  // and a TLS client works against the first server.
  v1::Control plain = engine_->config().control();
  plain.set_listen("127.0.0.1:0");
  plain.set_generate_self_signed(false);
  plain.clear_tls_cert_file();
  plain.clear_tls_key_file();
  auto plain_server = ControlServer::start(*engine_, {plain, dir_.path().toStdString()});
  QVERIFY2(plain_server.ok(), std::string(plain_server.status().message()).c_str());
  QVERIFY(!(*plain_server)->tls());
  o.address = "127.0.0.1:" + std::to_string((*plain_server)->port());
  auto same_client = GrpcEngineClient::connect(o);
  QVERIFY(same_client.ok());
  auto ok = (*same_client)->status();
  QVERIFY2(ok.ok(), std::string(ok.status().message()).c_str());
  auto tls = client(server_->port(), kViewerToken, cert_file_);
  QVERIFY(tls->status().ok());
}

void ControlPlaneTest::untrustedCertificateFailsClearly() {
  // Trust only the system roots: the handshake must fail, not fall back.
  auto c = client(server_->port(), kViewerToken, "", std::chrono::milliseconds(3000));
  auto r = c->status();  // system roots do not include a self-signed certificate
  QCOMPARE(r.status().code(), absl::StatusCode::kUnavailable);
  QVERIFY2(std::string(r.status().message()).find("TLS") != std::string::npos ||
               std::string(r.status().message()).find("cannot reach") != std::string::npos,
           std::string(r.status().message()).c_str());
}

void ControlPlaneTest::secretsAreNeverReturned() {
  auto c = client(server_->port(), kViewerToken, cert_file_);
  auto v = c->getConfig();
  QVERIFY(v.ok());
  QCOMPARE(v->config().backends(0).api_key(), "");
  QVERIFY(v->SerializeAsString().find("sk-never-show-this") == std::string::npos);
  for (const auto& e : engine_->audit({0, "", "", 1000})) {
    QVERIFY(e.detail.find("sk-never") == std::string::npos);
  }
}

void ControlPlaneTest::yamlErrorsAreLocated() {
  auto c = client(server_->port(), kViewerToken, cert_file_);
  v1::ConfigSource src;
  src.set_yaml("backends:\n  - name: a\n    url: htp://x\n    models: [m]\n");
  src.set_file("edit.yaml");
  auto r = c->validateConfig(src);
  QVERIFY(r.ok());
  QVERIFY(!r->valid());
  QCOMPARE(r->errors_size(), 1);
  QCOMPARE(r->errors(0), "edit.yaml:3:10: backends[0].url: unsupported scheme \"htp\" (expected http, https or sim)");
  auto d = c->diffConfig(src);
  QCOMPARE(d.status().code(), absl::StatusCode::kInvalidArgument);
}

void ControlPlaneTest::staleBaseVersionIsRefused() {
  auto c = client(server_->port(), kOperatorToken, cert_file_);
  auto v = c->getConfig();
  v1::ApplyConfigRequest req;
  *req.mutable_source()->mutable_config() = v->config();
  req.mutable_source()->mutable_config()->mutable_backends(0)->set_weight(2);
  req.set_base_version(v->version() - 1 > 0 ? v->version() - 1 : 999);
  auto r = c->applyConfig(req);
  QCOMPARE(r.status().code(), absl::StatusCode::kFailedPrecondition);
}

void ControlPlaneTest::metricsStreamAtTheRequestedInterval() {
  for (int i = 0; i < 5; ++i) {
    QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"x"}]})").status,
             200);
  }
  auto c = client(server_->port(), kViewerToken, cert_file_);
  std::vector<v1::MetricsSnapshot> got;
  auto st = c->watch(std::chrono::milliseconds(100), [&](const v1::MetricsSnapshot& s) {
    got.push_back(s);
    return got.size() < 3;
  });
  QVERIFY2(st.ok(), std::string(st.message()).c_str());
  QCOMPARE(got.size(), size_t{3});
  QVERIFY(got[0].requests_total() >= 5);
  QCOMPARE(got[0].backends_size(), 1);
  QVERIFY(got[2].ts_ms() - got[0].ts_ms() >= 150);
}

void ControlPlaneTest::remoteSnapshotsCarryRatesOfTheLastSecond() {
  auto c = client(server_->port(), kViewerToken, cert_file_);
  auto first = c->snapshot();
  QVERIFY2(first.ok(), std::string(first.status().message()).c_str());
  const uint64_t before = first->requests_total();
  for (int i = 0; i < 4; ++i) {
    QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"x"}]})").status,
             200);
  }
  // Within a few feed ticks a snapshot shows them, as totals and as a rate.
  absl::StatusOr<v1::MetricsSnapshot> s;
  QVERIFY(waitFor(
      [&] {
        s = c->snapshot();
        return s.ok() && s->requests_total() >= before + 4 && s->requests_per_second() > 0;
      },
      std::chrono::seconds(10)));
  QVERIFY(s->requests_per_second() <= 4.5);  // 4 requests over a ~1 s interval, not over 100 ms
  QVERIFY(s->ts_ms() > first->ts_ms());

  // A client of an engine that is not there: an explanatory error, bounded by the timeout.
  auto gone = client(closedPort(), kViewerToken, cert_file_, std::chrono::milliseconds(500));
  auto r = gone->snapshot();
  QVERIFY(!r.ok());
  QVERIFY2(std::string(r.status().message()).find("127.0.0.1") != std::string::npos,
           std::string(r.status().message()).c_str());
}

void ControlPlaneTest::remoteSnapshotsGoStaleWhenTheEngineHangs() {
  SpillwaydProcess daemon;
  QVERIFY2(daemon.start(SPILLWAYD_PATH), qPrintable(daemon.error()));
  GrpcClientOptions o;
  o.address = daemon.controlAddress();
  o.token = daemon.token();
  o.timeout = std::chrono::seconds(2);
  auto c = GrpcEngineClient::connect(o);
  QVERIFY(c.ok());
  QVERIFY((*c)->snapshot().ok());
  QCOMPARE(::kill(static_cast<pid_t>(daemon.pid()), SIGSTOP), 0);
  absl::StatusOr<v1::MetricsSnapshot> s;
  const bool went_stale = waitFor(
      [&] {
        s = (*c)->snapshot();
        return !s.ok();
      },
      std::chrono::seconds(15));
  ::kill(static_cast<pid_t>(daemon.pid()), SIGCONT);
  QVERIFY(went_stale);
  QVERIFY2(std::string(s.status().message()).find("no metrics from the engine") != std::string::npos,
           std::string(s.status().message()).c_str());
  QVERIFY(waitFor([&] { return (*c)->snapshot().ok(); }, std::chrono::seconds(15)));
}

void ControlPlaneTest::firstRemoteSnapshotCoversTheLastSecond() {
  // Requests, then a brand-new client: its very first snapshot shows them as
  // a rate, although they were all over before its stream opened. (Retried
  // while the engine's sampler has not ticked twice since it started.)
  absl::StatusOr<v1::MetricsSnapshot> s;
  QVERIFY(waitFor(
      [&] {
        for (int i = 0; i < 3; ++i) {
          postJson(engine_->port(), "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
        }
        auto c = client(server_->port(), kViewerToken, cert_file_);
        s = c->snapshot();
        return s.ok() && s->requests_per_second() > 0;
      },
      std::chrono::seconds(10)));
}

void ControlPlaneTest::tokenHashesAreConstantTimeComparable() {
  google::protobuf::RepeatedPtrField<v1::ControlToken> tokens;
  auto* t = tokens.Add();
  t->set_name("x");
  t->set_role("operator");
  t->set_sha256(TokenAuthority::sha256Hex("abc"));
  TokenAuthority auth(tokens);
  QCOMPARE(auth.identify("abc")->name, "x");
  QVERIFY(!auth.identify("abd"));
  QVERIFY(!auth.identify(""));
  std::string generated = auth.addGenerated("gen", Role::kViewer);
  QCOMPARE(generated.size(), size_t{64});
  QCOMPARE(static_cast<int>(auth.identify(generated)->role), static_cast<int>(Role::kViewer));
  QCOMPARE(TokenAuthority::sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

void ControlPlaneTest::mutualTlsRequiresAClientCertificate() {
  // A CA made for this run signs the server and the client certificates.
  QTemporaryDir d;
  auto path = [&](const char* f) { return d.filePath(f); };
  auto openssl = [&](const QStringList& args) {
    QProcess p;
    p.start("openssl", args);
    return p.waitForFinished(30000) && p.exitCode() == 0;
  };
  QVERIFY(openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout",
                   path("ca.key"), "-out", path("ca.pem")}));
  QFile ext(path("san.ext"));
  QVERIFY(ext.open(QIODevice::WriteOnly));
  ext.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  ext.close();
  for (const char* who : {"server", "client"}) {
    const QString w(who);
    QVERIFY(openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + w, "-keyout", path(who) + ".key",
                     "-out", path(who) + ".csr"}));
    QVERIFY(openssl({"x509", "-req", "-in", path(who) + ".csr", "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                     "-CAcreateserial", "-days", "1", "-extfile", path("san.ext"), "-out", path(who) + ".pem"}));
  }
  v1::Control ctl;
  ctl.set_listen("127.0.0.1:0");
  ctl.set_tls_cert_file(path("server.pem").toStdString());
  ctl.set_tls_key_file(path("server.key").toStdString());
  ctl.set_tls_client_ca_file(path("ca.pem").toStdString());
  auto* t = ctl.add_tokens();
  t->set_name("m");
  t->set_role("viewer");
  t->set_sha256(TokenAuthority::sha256Hex("mtls-token"));
  auto server = ControlServer::start(*engine_, {ctl, ""});
  QVERIFY2(server.ok(), std::string(server.status().message()).c_str());

  GrpcClientOptions o;
  o.address = "127.0.0.1:" + std::to_string((*server)->port());
  o.token = "mtls-token";
  o.ca_file = path("ca.pem").toStdString();
  o.timeout = std::chrono::milliseconds(3000);
  auto without = GrpcEngineClient::connect(o);
  QVERIFY(!(*without)->status().ok());  // no client certificate: refused in the handshake
  o.client_cert_file = path("client.pem").toStdString();
  o.client_key_file = path("client.key").toStdString();
  auto with = GrpcEngineClient::connect(o);
  auto st = (*with)->status();
  QVERIFY2(st.ok(), std::string(st.status().message()).c_str());
}

void ControlPlaneTest::generatedTokenWithoutDataDirIsPrivateAndRemoved() {
  v1::Control ctl;
  ctl.set_listen("127.0.0.1:0");
  std::string file;
  {
    auto server = ControlServer::start(*engine_, {ctl, ""});
    QVERIFY2(server.ok(), std::string(server.status().message()).c_str());
    file = (*server)->generatedTokenFile();
    QVERIFY(!file.empty());
    QFileInfo info(QString::fromStdString(file));
    QVERIFY(info.exists());
    QCOMPARE(info.permissions() & (QFile::ReadGroup | QFile::ReadOther | QFile::WriteGroup | QFile::WriteOther),
             QFileDevice::Permissions());
  }
  // The temporary directory made for it goes with the server (no litter in /tmp).
  QVERIFY(!QFileInfo::exists(QString::fromStdString(file)));
  QVERIFY(!QFileInfo(QString::fromStdString(file)).dir().exists());
}

void ControlPlaneTest::tokenFromAFileIsAccepted() {
  // A Kubernetes Secret mounted as a file: the token itself, with a newline.
  QFile f(dir_.filePath("secret-token"));
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write("sk-from-a-secret\n");
  f.close();
  const v1::Control ctl = controlWithTokenFile(dir_.filePath("secret-token"));
  auto server = ControlServer::start(*engine_, {ctl, dir_.path().toStdString()});
  QVERIFY2(server.ok(), std::string(server.status().message()).c_str());
  QVERIFY((*server)->generatedToken().empty());  // a token was configured
  QVERIFY(client((*server)->port(), "sk-from-a-secret", "")->status().ok());
  QVERIFY(!client((*server)->port(), "sk-from-a-secre", "")->status().ok());
  QVERIFY(!client((*server)->port(), kOperatorToken, "")->status().ok());
}

void ControlPlaneTest::unreadableTokenFileStopsTheStart() {
  v1::Control ctl = controlWithTokenFile(dir_.filePath("no-such-secret"));
  auto server = ControlServer::start(*engine_, {ctl, dir_.path().toStdString()});
  QVERIFY(!server.ok());
  QVERIFY2(server.status().message().find("control.tokens[0].token_file: cannot read") != std::string::npos,
           std::string(server.status().message()).c_str());
  // Both ways of naming a token at once are refused by validation.
  ctl.mutable_tokens(0)->set_sha256(TokenAuthority::sha256Hex("x"));
  v1::Config c = engine_->config();
  *c.mutable_control() = ctl;
  bool named = false;
  for (const auto& e : engine_->validateConfig(c)) named |= e.path == "control.tokens[0].token_file";
  QVERIFY(named);
}

QTEST_APPLESS_MAIN(ControlPlaneTest)
