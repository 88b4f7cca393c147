// The load generator's statistics and behaviour against known inputs:
// percentiles, Poisson rates, stall and loss detection, error accounting,
// scenario validation.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class LoadGeneratorTest : public QObject {
  Q_OBJECT
 private slots:
  void histogramIsExactBelow128us();
  void histogramPercentilesWithinOnePointSixPercent();
  void histogramMerges();
  void openLoopHitsTheTargetRate();
  void closedLoopKeepsConcurrency();
  void detectsStalls();
  void countsLostStreams();
  void drivesTheResponsesApi();
  void countsErrorsByStatus();
  void overflowIsCountedNotWaitedFor();
  void scenarioFilesAreValidated();
  void reportJsonIsComplete();
  void cancelStopsEarly();
  void repeatedQuestionsComeFromTheCache();
};
