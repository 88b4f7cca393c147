// The gRPC control plane end to end on loopback: TLS with a certificate the
// server generates, each role against each kind of method, missing and
// unknown tokens, plaintext against the TLS port, secrets never returned,
// located YAML errors, optimistic concurrency, the metrics stream, audit.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>
#include <QTemporaryDir>
#include <memory>

#include "control/control_server.h"
#include "engine.h"

class ControlPlaneTest : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void cleanupTestCase();
  void viewerCanReadButNotChange();
  void operatorCanChange();
  void missingAndUnknownTokensAreRefusedAndAudited();
  void plaintextToTheTlsPortFailsClearly();
  void untrustedCertificateFailsClearly();
  void secretsAreNeverReturned();
  void yamlErrorsAreLocated();
  void staleBaseVersionIsRefused();
  void metricsStreamAtTheRequestedInterval();
  // snapshot() over gRPC reads a 1 s feed: rates cover real intervals, and
  // an engine that goes away turns into an error, not a hang.
  void remoteSnapshotsCarryRatesOfTheLastSecond();
  // A remote engine that hangs (SIGSTOP) turns into an error after a few
  // missed snapshots instead of its last numbers; it recovers on SIGCONT.
  void remoteSnapshotsGoStaleWhenTheEngineHangs();
  // A new client's first snapshot already has rates (the server's first
  // message covers the engine's last one to two seconds).
  void firstRemoteSnapshotCoversTheLastSecond();
  void tokenHashesAreConstantTimeComparable();
  void mutualTlsRequiresAClientCertificate();
  void generatedTokenWithoutDataDirIsPrivateAndRemoved();
  void tokenFromAFileIsAccepted();
  void unreadableTokenFileStopsTheStart();

 private:
  QTemporaryDir dir_;
  std::unique_ptr<spillway::Engine> engine_;
  std::unique_ptr<spillway::control::ControlServer> server_;
  std::string cert_file_;
};
