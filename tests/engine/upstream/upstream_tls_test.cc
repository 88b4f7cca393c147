// https backends: TLS with certificate and host name verification, the
// insecure escape hatch, and a clear 502 when verification fails.
#include "upstream_tls_test.h"

#include <QtTest>

#include <QProcess>

#include "engine.h"
#include "fakes/tls_backend.h"
#include "support/json.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

std::unique_ptr<Engine> startEngine(uint16_t port, bool insecure) {
  std::string yaml = engineYaml("  - name: tls\n    url: https://127.0.0.1:" + std::to_string(port) +
                                "\n    models: [m]\n    health_check: {path: none}\n" +
                                (insecure ? "    tls_insecure_skip_verify: true\n" : ""));
  auto e = Engine::start(configFromYaml(yaml));
  if (!e.ok()) qFatal("engine start failed");
  return std::move(*e);
}

const std::string kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";

}  // namespace

void UpstreamTlsTest::initTestCase() {
  // A self-signed certificate for 127.0.0.1 (IP SAN), made for this run.
  QVERIFY(dir_.isValid());
  cert_ = dir_.filePath("cert.pem").toStdString();
  key_ = dir_.filePath("key.pem").toStdString();
  QProcess p;
  p.start("openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", QString::fromStdString(key_), "-out",
                      QString::fromStdString(cert_)});
  QVERIFY(p.waitForFinished(30000));
  QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
}

void UpstreamTlsTest::verifiedTlsWithTrustedCertificate() {
  // OpenSSL's default verify paths honour SSL_CERT_FILE: trust our cert only.
  qputenv("SSL_CERT_FILE", QByteArray::fromStdString(cert_));
  TlsBackend backend(cert_, key_);
  auto engine = startEngine(backend.port(), false);
  for (int i = 0; i < 3; ++i) {
    auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
    QCOMPARE(r.status, 200);
    QCOMPARE(str(jsonObject(r.body)["choices"].toArray()[0].toObject()["message"].toObject()["content"]), "over tls");
  }
  QCOMPARE(backend.requestsServed(), 3);
  qunsetenv("SSL_CERT_FILE");
}

void UpstreamTlsTest::untrustedCertificateIs502() {
  qputenv("SSL_CERT_FILE", "/nonexistent");  // trust nothing
  TlsBackend backend(cert_, key_);
  auto engine = startEngine(backend.port(), false);
  auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 502);
  auto err = jsonObject(r.body)["error"].toObject();
  QCOMPARE(str(err["code"]), "upstream_unreachable");
  QVERIFY2(str(err["message"]).find("TLS handshake") != std::string::npos, r.body.c_str());
  QCOMPARE(backend.requestsServed(), 0);
  qunsetenv("SSL_CERT_FILE");
}

void UpstreamTlsTest::trustedCertificateForAnotherNameIsRefused() {
  // Trusted (it is the CA file) but issued for 127.0.0.1, reached as
  // "localhost": the host name check must refuse it.
  qputenv("SSL_CERT_FILE", QByteArray::fromStdString(cert_));
  TlsBackend backend(cert_, key_);
  auto e = Engine::start(configFromYaml(engineYaml("  - name: tls\n    url: https://localhost:" +
                                                   std::to_string(backend.port()) +
                                                   "\n    models: [m]\n    health_check: {path: none}\n")));
  QVERIFY(e.ok());
  auto r = postJson((*e)->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 502);
  auto err = jsonObject(r.body)["error"].toObject();
  QCOMPARE(str(err["code"]), "upstream_unreachable");
  QVERIFY2(str(err["message"]).find("TLS handshake") != std::string::npos, r.body.c_str());
  QCOMPARE(backend.requestsServed(), 0);
  qunsetenv("SSL_CERT_FILE");
}

void UpstreamTlsTest::insecureSkipVerifyAcceptsSelfSigned() {
  qputenv("SSL_CERT_FILE", "/nonexistent");
  TlsBackend backend(cert_, key_);
  auto engine = startEngine(backend.port(), true);
  auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 200);
  QCOMPARE(r.header("x-spillway-backend"), "tls");
  qunsetenv("SSL_CERT_FILE");
}

void UpstreamTlsTest::healthProbesUseEachBackendsOwnTls() {
  // Before: every probe used the first backend's TLS context. Here the
  // first backend verifies certificates and the second skips verification
  // (self-signed): its probes must get through with its own settings.
  qunsetenv("SSL_CERT_FILE");
  TlsBackend backend(cert_, key_);
  const std::string yaml = engineYaml(std::string(R"(  - name: plain
    url: sim://plain
    models: [m]
    sim: {profile: instant}
  - name: tls
    url: https://127.0.0.1:)") + std::to_string(backend.port()) + R"(
    models: [m]
    tls_insecure_skip_verify: true
    health_check: {path: /health, interval_ms: 50, unhealthy_threshold: 1}
)");
  auto e = Engine::start(configFromYaml(yaml));
  QVERIFY(e.ok());
  auto& engine = **e;
  // Probes complete over TLS (the fake counts each request it answers)...
  QVERIFY(waitFor([&] { return backend.probesServed() >= 3; }));
  // ... and the backend is up after them.
  for (const auto& b : engine.backends()) {
    if (b.name == "tls") QCOMPARE(b.state, std::string("up"));
  }
}

QTEST_APPLESS_MAIN(UpstreamTlsTest)
