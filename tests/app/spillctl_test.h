// spillctl against a live spillwayd: every command, human and JSON output,
// and its error messages and exit codes (bad file, refused token,
// unreachable engine).
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>
#include <QProcess>
#include <QTemporaryDir>

class SpillctlTest : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void cleanupTestCase();
  void status();
  void configRoundTrip();
  void validateReportsLocatedErrors();
  void historyAndRollback();
  void drainAndUndrain();
  void ejectReadmitAndWeight();
  void auditAndHistorySeries();
  void watchPrintsSnapshots();
  void refusedTokenAndUnreachableEngine();
  void hashToken();
  void balanceSwitchesAPoolsPolicy();
  void gpuListAndPlan();
  void cacheStatsLookupAndPurge();
  void usageTableJsonAndEvents();
  void fleetListsTheReplicas();
  void secretsNeverLeakIntoLogsOrAnswers();
  void crashesDuringAppliesLoseNothingCommitted();
  void fullDiskFailsWritesCleanlyAndLosesNothing();

 private:
  struct Run {
    int code = -1;
    QString out, err;
  };
  Run ctl(const QStringList& args, bool with_token = true);

  QTemporaryDir dir_;
  QProcess daemon_;
  QString control_addr_;
  QString token_file_;
};
