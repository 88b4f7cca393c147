// Degradation: the automatic level's signals (oldest queued wait, error
// rate, backends out) with hysteresis and dwell, pins, levels by class, and
// level 2's request rewrite.
#pragma once

#include <QObject>

class DegradationTest : public QObject {
  Q_OBJECT
 private slots:
  void degradationFollowsErrorRateAndBackendsOut();
  void degradationHasHysteresisAndDwell();
  void refusalsHoldLevelOneAtLeast();
  void degradationPinOverridesAndReleases();
  void automaticLevelsDegradeOnlyWhatTheFleetCannotServe();
  void degradationAppliesByClass();
  void rewriteCapsTokensAddsInstructionAndSwapsModel();
};
