// https backends: TLS with certificate and host name verification, the
// insecure escape hatch, and a clear 502 when verification fails.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>
#include <QTemporaryDir>

class UpstreamTlsTest : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void verifiedTlsWithTrustedCertificate();
  void untrustedCertificateIs502();
  void trustedCertificateForAnotherNameIsRefused();
  void insecureSkipVerifyAcceptsSelfSigned();
  void healthProbesUseEachBackendsOwnTls();

 private:
  QTemporaryDir dir_;
  std::string cert_, key_;
};
