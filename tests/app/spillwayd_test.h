// The spillwayd binary as an operator runs it: --help, --check-config exit
// codes and messages, serving on the port it prints, and a graceful drain on
// SIGTERM that lets an in-flight stream finish; SIGHUP and --watch-config
// reloading the config file (under load, and refusing a broken file).
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class SpillwaydTest : public QObject {
  Q_OBJECT
 private slots:
  void helpDocumentsEveryFlag();
  void checkConfigReportsEveryErrorWithItsLocation();
  void servesTheEmbeddedDefaults();
  void sigtermDrainsInFlightRequests();
  void sigintDrainsLikeSigterm();
  void printedDefaultConfigValidates();
  void simSubcommandServesOpenAiApi();
  void gpuPlanWorksOffline();
  void versionIsPrinted();
  void sighupReloadsUnderLoadWithoutFailures();
  void sighupWithABrokenFileChangesNothing();
  void watchConfigAppliesAnEditedFile();
  void readyzSaysDrainingDuringTheDrainDelay();
};
