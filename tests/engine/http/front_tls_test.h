// HTTPS at the front door (server.tls) on real loopback sockets, with
// certificates made by the openssl tool for this run (a root, an
// intermediate, the gateway's certificate; a client CA and its client
// certificate; a rogue CA): curl and OpenSSL's s_client as the clients.
// The chain is sent, TLS 1.0/1.1 and weak ciphers are refused, ALPN says
// http/1.1, a client certificate stands for its key's tenant (and one from
// another CA is refused), a replaced certificate reaches new connections
// while open ones keep going, a broken replacement keeps the one in use,
// an apply naming an unusable certificate is refused, and plain HTTP off
// loopback is refused unless allow_plaintext says so.
#pragma once

#include <QObject>
#include <QTemporaryDir>
#include <string>

class FrontTlsTest : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void curlGetsAnswersOverHttpsWithTheChain();
  void oldProtocolsAndWeakCiphersAreRefused();
  void clientCertificateStandsForItsKey();
  void requiredClientCertificateRefusesOthers();
  void replacedCertificateReachesNewConnectionsOnly();
  void brokenReplacementKeepsTheCertificateInUse();
  void applyWithUnusableCertificateIsRefused();
  void plaintextOffLoopbackNeedsAllowPlaintext();
  void officialSdkOverHttps();

 private:
  std::string path(const char* name) const;
  QTemporaryDir dir_;
};
