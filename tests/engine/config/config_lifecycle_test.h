// The config lifecycle on a running engine: diff, dry run, apply with an
// atomic swap (in-flight requests finish on the old config), optimistic
// concurrency, rollback, listener re-bind, backend drain, versions and audit
// in the store, and no lost request across 20 applies under load.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class ConfigLifecycleTest : public QObject {
  Q_OBJECT
 private slots:
  void diffIsFieldByField();
  void dryRunAndNoOpChangeNothing();
  void applyRecordsVersionAndAudit();
  void invalidConfigIsRefusedWhole();
  void staleBaseVersionIsRefused();
  void rollbackRestoresAnEarlierVersion();
  void inFlightStreamFinishesOnTheOldConfig();
  void listenerMovesWithoutDroppingAcceptedConnections();
  void drainedBackendGetsNoNewRequests();
  void versionsSurviveARestart();
  void noRequestLostAcrossAHundredApplies();
  void removedBackendsAreReleased();
};
