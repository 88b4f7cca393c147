#include "front_tls_test.h"

#include <QtTest>

#include <QFile>
#include <QProcess>
#include <QStandardPaths>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include "common/sha256.h"
#include "config/config_loader.h"
#include "config/config_error.h"
#include "engine.h"
#include "support/run_tool.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace bhttp = boost::beast::http;

namespace {

const char* kInstant = R"(  - name: a
    url: sim://a
    models: [small]
    sim: {profile: instant}
)";
const std::string kChat = R"({"model":"small","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})";

void openssl(const QStringList& args) {
  int code = 0;
  const std::string out = runTool("openssl", args, {}, &code);
  if (code != 0) qFatal("openssl %s failed: %s", qPrintable(args.join(' ')), out.c_str());
}

void writeFile(const std::string& path, const QByteArray& bytes) {
  // Written aside and renamed over, as a certificate renewal does.
  const QString tmp = QString::fromStdString(path) + ".new";
  QFile f(tmp);
  if (!f.open(QIODevice::WriteOnly) || f.write(bytes) != bytes.size()) qFatal("cannot write %s", qPrintable(tmp));
  f.close();
  if (std::rename(tmp.toLocal8Bit().constData(), path.c_str()) != 0) qFatal("cannot rename %s", qPrintable(tmp));
}

QByteArray readFile(const std::string& path) {
  QFile f(QString::fromStdString(path));
  if (!f.open(QIODevice::ReadOnly)) qFatal("cannot read %s", path.c_str());
  return f.readAll();
}

// A TLS client connection that trusts `ca` only, with receive and send
// timeouts (a server that never answers fails the test instead of hanging).
struct TlsClient {
  net::io_context io;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<ssl::stream<net::ip::tcp::socket>> stream;
  boost::system::error_code error;  // of the handshake

  TlsClient(uint16_t port, const std::string& ca, const std::string& cert = "", const std::string& key = "") {
    ctx.load_verify_file(ca);
    ctx.set_verify_mode(ssl::verify_peer);
    if (!cert.empty()) {
      ctx.use_certificate_chain_file(cert);
      ctx.use_private_key_file(key, ssl::context::pem);
    }
    stream = std::make_unique<ssl::stream<net::ip::tcp::socket>>(io, ctx);
    stream->next_layer().connect({net::ip::make_address("127.0.0.1"), port});
    timeval limit{10, 0};
    ::setsockopt(stream->next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(stream->next_layer().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    stream->handshake(ssl::stream_base::client, error);
  }

  // The server certificate's subject common name.
  std::string peerName() {
    std::string name;
    if (X509* cert = SSL_get1_peer_certificate(stream->native_handle())) {
      char cn[256] = {};
      const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
      if (n > 0) name.assign(cn, static_cast<size_t>(n));
      X509_free(cert);
    }
    return name;
  }

  // One chat request on this connection (kept alive): the answer's status,
  // or -1 when the connection failed.
  int chat() {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/v1/chat/completions", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::content_type, "application/json");
    req.body() = kChat;
    req.prepare_payload();
    boost::system::error_code ec;
    bhttp::write(*stream, req, ec);
    if (ec) return -1;
    boost::beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(*stream, buffer, res, ec);
    return ec ? -1 : static_cast<int>(res.result_int());
  }
};

struct SClient {
  int exit_code = 0;
  std::string out;
};
// OpenSSL's s_client against the port with extra options (no input: it
// handshakes, prints the session and leaves).
SClient sClient(uint16_t port, QStringList options) {
  SClient r;
  QStringList args{"s_client", "-connect", QString("127.0.0.1:%1").arg(port), "-servername", "localhost"};
  args << options;
  r.out = runTool("openssl", args, {}, &r.exit_code);
  return r;
}

}  // namespace

std::string FrontTlsTest::path(const char* name) const { return dir_.filePath(name).toStdString(); }

void FrontTlsTest::initTestCase() {
  QVERIFY(dir_.isValid());
  const QString d = dir_.path() + "/";
  auto ext = [&](const char* name, const char* text) {
    QFile f(d + name);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(text);
  };
  ext("ca.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
  ext("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  ext("client.ext", "extendedKeyUsage=clientAuth\n");
  const QStringList ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"};
  // A self-signed root.
  auto root = [&](const QString& name, const QString& cn) {
    openssl(QStringList{"req", "-x509"} + ec +
            QStringList{"-days", "2", "-subj", "/CN=" + cn, "-keyout", d + name + ".key", "-out", d + name + ".pem",
                        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  };
  // A certificate signed by `ca`, with the extensions in `extfile`.
  auto sign = [&](const QString& name, const QString& cn, const QString& ca, const QString& extfile) {
    openssl(QStringList{"req"} + ec +
            QStringList{"-subj", "/CN=" + cn, "-keyout", d + name + ".key", "-out", d + name + ".csr"});
    openssl({"x509", "-req", "-in", d + name + ".csr", "-CA", d + ca + ".pem", "-CAkey", d + ca + ".key", "-set_serial",
             QString::number(qHash(name) & 0x7fffffff), "-days", "2", "-extfile", d + extfile, "-out", d + name + ".pem"});
  };
  root("root", "Spillway Test Root");
  sign("intermediate", "Spillway Test Intermediate", "root", "ca.ext");
  sign("one", "gateway-one", "intermediate", "server.ext");
  sign("two", "gateway-two", "intermediate", "server.ext");
  root("clients", "Spillway Test Clients");
  sign("team-a", "team-a", "clients", "client.ext");
  root("rogue", "Rogue CA");
  sign("rogue-team-a", "team-a", "rogue", "client.ext");
  // The served chain: the gateway's certificate, then the intermediate.
  for (const char* name : {"one", "two"}) {
    QFile out(d + name + "-chain.pem");
    QVERIFY(out.open(QIODevice::WriteOnly));
    out.write(readFile(path(name) + ".pem") + readFile(path("intermediate.pem")));
  }
  QFile::copy(d + "one-chain.pem", d + "serving.pem");
  QFile::copy(d + "one.key", d + "serving.key");
}

namespace {

std::string tlsYaml(const std::string& dir, const std::string& extra = "") {
  return "  tls: {cert_file: " + dir + "/serving.pem, key_file: " + dir + "/serving.key" + extra + "}\n";
}

std::unique_ptr<Engine> startTls(const std::string& server_extra, const std::string& top_extra = "") {
  // engineYaml's server block continues with the lines in server_extra.
  auto e = Engine::start(configFromYaml(engineYaml(kInstant, server_extra) + top_extra), {"", "test", false});
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

}  // namespace

void FrontTlsTest::curlGetsAnswersOverHttpsWithTheChain() {
  auto engine = startTls(tlsYaml(dir_.path().toStdString()));
  QVERIFY(engine->url().starts_with("https://127.0.0.1:"));
  // curl trusts the root alone: the answer proves the intermediate was sent.
  int code = 0;
  const std::string out = runTool("curl", {"--noproxy", "*", "-sS", "--cacert", QString::fromStdString(path("root.pem")),
                                           "-H", "Content-Type: application/json", "-d", QString::fromStdString(kChat),
                                           "-w", "\\n%{http_code} %{http_version}", QString::fromStdString(engine->url()) + "/v1/chat/completions"},
                                  {}, &code);
  QCOMPARE(code, 0);
  QVERIFY2(out.find("\"chat.completion\"") != std::string::npos, out.c_str());
  QVERIFY2(out.ends_with("200 1.1"), out.c_str());
  // The chain as s_client sees it: two certificates, ALPN http/1.1.
  const SClient s = sClient(engine->port(), {"-showcerts", "-alpn", "h2,http/1.1", "-CAfile", QString::fromStdString(path("root.pem"))});
  QCOMPARE(s.exit_code, 0);
  size_t certs = 0;
  for (size_t at = 0; (at = s.out.find("-----BEGIN CERTIFICATE-----", at)) != std::string::npos; ++at) ++certs;
  QCOMPARE(certs, size_t{2});
  QVERIFY2(s.out.find("ALPN protocol: http/1.1") != std::string::npos, s.out.c_str());
  QVERIFY2(s.out.find("Verify return code: 0 (ok)") != std::string::npos, s.out.c_str());
  const FrontTlsStatus t = engine->frontTls();
  QVERIFY(t.enabled);
  QVERIFY2(t.subject.find("CN=gateway-one") != std::string::npos, t.subject.c_str());
  QVERIFY(t.not_after_unix > std::time(nullptr));
  // Plain HTTP to the HTTPS port gets no answer and counts as a failed handshake.
  auto plain = postJson(engine->port(), "/v1/chat/completions", kChat);
  QVERIFY(plain.status != 200);
  QVERIFY(waitFor([&] { return engine->frontTls().handshake_failures >= 1; }));
}

void FrontTlsTest::oldProtocolsAndWeakCiphersAreRefused() {
  auto engine = startTls(tlsYaml(dir_.path().toStdString()));
  const uint64_t failures_before = engine->frontTls().handshake_failures;
  // SECLEVEL=0 lets the client itself offer what it would refuse by default.
  for (const char* version : {"-tls1", "-tls1_1"}) {
    const SClient s = sClient(engine->port(), {version, "-cipher", "DEFAULT@SECLEVEL=0"});
    QVERIFY2(s.exit_code != 0, s.out.c_str());
    QVERIFY2(s.out.find("Cipher is (NONE)") != std::string::npos || s.out.find("alert") != std::string::npos, s.out.c_str());
  }
  // TLS 1.2 without forward secrecy, or with CBC: no shared cipher.
  for (const char* cipher : {"AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA"}) {
    const SClient s = sClient(engine->port(), {"-tls1_2", "-cipher", cipher});
    QVERIFY2(s.exit_code != 0, cipher);
  }
  // What is offered: TLS 1.2 with an ECDHE AEAD suite, and TLS 1.3.
  const SClient tls12 = sClient(engine->port(), {"-tls1_2"});
  QCOMPARE(tls12.exit_code, 0);
  QVERIFY2(tls12.out.find("Protocol  : TLSv1.2") != std::string::npos, tls12.out.c_str());
  QVERIFY2(tls12.out.find("Cipher    : ECDHE-ECDSA-") != std::string::npos, tls12.out.c_str());
  const SClient tls13 = sClient(engine->port(), {"-tls1_3"});
  QCOMPARE(tls13.exit_code, 0);
  QVERIFY2(tls13.out.find("TLSv1.3") != std::string::npos, tls13.out.c_str());
  QVERIFY(waitFor([&] { return engine->frontTls().handshake_failures >= failures_before + 5; }));
}

void FrontTlsTest::clientCertificateStandsForItsKey() {
  const std::string d = dir_.path().toStdString();
  // Keys required; team-a is known by its certificate alone, allowed one
  // request a minute.
  auto engine = startTls(tlsYaml(d, ", client_ca_file: " + d + "/clients.pem"),
                         "limits:\n  require_key: true\n  keys:\n    - {name: team-a, client_cert_cn: team-a, "
                         "limits: {requests_per_minute: 1}}\n    - {name: keyed, sha256: " +
                             common::sha256Hex("sk-keyed") + "}\n");
  TlsClient with_cert(engine->port(), path("root.pem"), path("team-a.pem"), path("team-a.key"));
  QVERIFY2(!with_cert.error, with_cert.error.message().c_str());
  QCOMPARE(with_cert.chat(), 200);
  QCOMPARE(with_cert.chat(), 429);  // the key's own limit: the certificate is that key
  // Without a certificate: the handshake passes (certificates are
  // optional), and the request needs a key like any other.
  TlsClient without(engine->port(), path("root.pem"));
  QVERIFY(!without.error);
  QCOMPARE(without.chat(), 401);
  int code = 0;
  const std::string out = runTool("curl", {"--noproxy", "*", "-sS", "--cacert", QString::fromStdString(path("root.pem")),
                                           "-H", "Authorization: Bearer sk-keyed", "-H", "Content-Type: application/json",
                                           "-d", QString::fromStdString(kChat), "-o", "/dev/null", "-w", "%{http_code}",
                                           QString::fromStdString(engine->url()) + "/v1/chat/completions"},
                                  {}, &code);
  QCOMPARE(out, std::string("200"));
  // A certificate with the same name from another CA: refused in the handshake.
  TlsClient rogue(engine->port(), path("root.pem"), path("rogue-team-a.pem"), path("rogue-team-a.key"));
  const int rogue_status = rogue.error ? -1 : rogue.chat();  // TLS 1.3 reports the refusal at the first read
  QCOMPARE(rogue_status, -1);
  QVERIFY(engine->frontTls().client_certificates);
  QVERIFY(!engine->frontTls().client_certificates_required);
}

void FrontTlsTest::requiredClientCertificateRefusesOthers() {
  const std::string d = dir_.path().toStdString();
  auto engine = startTls(tlsYaml(d, ", client_ca_file: " + d + "/clients.pem, require_client_cert: true"),
                         "limits:\n  keys:\n    - {name: team-a, client_cert_cn: team-a}\n");
  TlsClient without(engine->port(), path("root.pem"));
  const int status = without.error ? -1 : without.chat();
  QCOMPARE(status, -1);
  TlsClient with_cert(engine->port(), path("root.pem"), path("team-a.pem"), path("team-a.key"));
  QVERIFY(!with_cert.error);
  QCOMPARE(with_cert.chat(), 200);
  QVERIFY(engine->frontTls().client_certificates_required);
}

void FrontTlsTest::replacedCertificateReachesNewConnectionsOnly() {
  const std::string d = dir_.path().toStdString();
  writeFile(path("serving.pem"), readFile(path("one-chain.pem")));
  writeFile(path("serving.key"), readFile(path("one.key")));
  auto engine = startTls(tlsYaml(d));
  TlsClient before(engine->port(), path("root.pem"));
  QVERIFY(!before.error);
  QCOMPARE(before.peerName(), std::string("gateway-one"));
  QCOMPARE(before.chat(), 200);
  // A renewal: both files replaced. New connections (which also trigger
  // the check, at most once a second) get the new certificate.
  writeFile(path("serving.key"), readFile(path("two.key")));
  writeFile(path("serving.pem"), readFile(path("two-chain.pem")));
  QVERIFY(waitFor([&] {
    TlsClient probe(engine->port(), path("root.pem"));
    return !probe.error && probe.peerName() == "gateway-two";
  }));
  QCOMPARE(engine->frontTls().reloads, uint64_t{1});
  QVERIFY(engine->frontTls().subject.find("gateway-two") != std::string::npos);
  // The connection opened before keeps its session and is served.
  QCOMPARE(before.chat(), 200);
  QCOMPARE(before.chat(), 200);
}

void FrontTlsTest::brokenReplacementKeepsTheCertificateInUse() {
  const std::string d = dir_.path().toStdString();
  writeFile(path("serving.pem"), readFile(path("one-chain.pem")));
  writeFile(path("serving.key"), readFile(path("one.key")));
  auto engine = startTls(tlsYaml(d));
  // A key that is not the certificate's (a renewal half done).
  writeFile(path("serving.key"), readFile(path("two.key")));
  QVERIFY(waitFor([&] {
    TlsClient probe(engine->port(), path("root.pem"));
    return engine->frontTls().reload_failures >= 1;
  }));
  const FrontTlsStatus t = engine->frontTls();
  QVERIFY2(t.last_error.find("server.tls.key_file") != std::string::npos, t.last_error.c_str());
  TlsClient after(engine->port(), path("root.pem"));
  QVERIFY(!after.error);
  QCOMPARE(after.peerName(), std::string("gateway-one"));
  QCOMPARE(after.chat(), 200);
  // Mended: the next check takes it.
  writeFile(path("serving.pem"), readFile(path("two-chain.pem")));
  QVERIFY(waitFor([&] {
    TlsClient probe(engine->port(), path("root.pem"));
    return !probe.error && probe.peerName() == "gateway-two";
  }));
  QVERIFY(engine->frontTls().last_error.empty());
}

void FrontTlsTest::applyWithUnusableCertificateIsRefused() {
  const std::string d = dir_.path().toStdString();
  writeFile(path("serving.pem"), readFile(path("one-chain.pem")));
  writeFile(path("serving.key"), readFile(path("one.key")));
  auto engine = startTls(tlsYaml(d));
  v1::Config next = engine->config();
  next.mutable_server()->mutable_tls()->set_cert_file(d + "/missing.pem");
  auto applied = engine->applyConfig(next, ChangeRequest{"test", "a certificate that is not there"});
  QVERIFY(!applied.ok());
  QVERIFY2(applied.status().message().find("server.tls.cert_file") != std::string::npos,
           std::string(applied.status().message()).c_str());
  TlsClient still(engine->port(), path("root.pem"));
  QVERIFY(!still.error);
  QCOMPARE(still.chat(), 200);
  // Starting on one fails with the same field named.
  auto bad = configFromYaml(engineYaml(kInstant, "  tls: {cert_file: " + d + "/missing.pem, key_file: " + d + "/one.key}\n"));
  auto failed = Engine::start(bad, {"", "test", false});
  QVERIFY(!failed.ok());
  QVERIFY(failed.status().message().find("server.tls.cert_file") != std::string::npos);
}

void FrontTlsTest::plaintextOffLoopbackNeedsAllowPlaintext() {
  const std::string yaml = "server:\n  listen: 0.0.0.0:0\nbackends:\n" + std::string(kInstant);
  auto loaded = config::loadYaml(yaml, "spillway.yaml");  // parses and validates
  QCOMPARE(loaded.errors.size(), size_t{1});
  const std::string text = config::formatErrors(loaded.errors);
  QVERIFY2(text.find("spillway.yaml:2:") != std::string::npos, text.c_str());
  QVERIFY2(text.find("server.listen") != std::string::npos, text.c_str());
  QVERIFY2(text.find("allow_plaintext") != std::string::npos, text.c_str());
  // Allowed when said, or with TLS, or on loopback.
  for (const std::string& ok : {"server:\n  listen: 0.0.0.0:0\n  allow_plaintext: true\n",
                                "server:\n  listen: 0.0.0.0:0\n  tls: {cert_file: c.pem, key_file: k.pem}\n",
                                "server:\n  listen: 127.0.0.2:0\n", "server:\n  listen: localhost:0\n"}) {
    auto l = config::loadYaml(ok + "backends:\n" + kInstant, "spillway.yaml");
    QVERIFY2(l.ok(), config::formatErrors(l.errors).c_str());
  }
}

void FrontTlsTest::officialSdkOverHttps() {
  const QString node = QStandardPaths::findExecutable("node");
  const QString sdk_dir = QString(SPILLWAY_SOURCE_DIR) + "/tests/sdk";
  QVERIFY2(!node.isEmpty(), "node is installed by installer/debian-deps.sh");
  QVERIFY2(QFile::exists(sdk_dir + "/node_modules/openai/package.json"),
           "the SDK is installed by installer/sdk-deps.sh (make test runs it)");
  writeFile(path("serving.pem"), readFile(path("one-chain.pem")));
  writeFile(path("serving.key"), readFile(path("one.key")));
  auto engine = startTls(tlsYaml(dir_.path().toStdString()));
  QProcess p;
  p.setWorkingDirectory(sdk_dir);
  p.setProcessChannelMode(QProcess::MergedChannels);
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("NODE_EXTRA_CA_CERTS", QString::fromStdString(path("root.pem")));
  env.remove("HTTPS_PROXY");
  env.remove("https_proxy");
  p.setProcessEnvironment(env);
  p.start(node, {"tls_check.mjs", QString::fromStdString(engine->url()), "small"});
  QVERIFY(p.waitForFinished(60000));
  const QString out = p.readAll();
  qInfo().noquote() << out;
  QCOMPARE(p.exitCode(), 0);
  QVERIFY(out.contains("all TLS SDK checks passed"));
}

QTEST_APPLESS_MAIN(FrontTlsTest)
