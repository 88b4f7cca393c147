// Weighted round robin, operator ejection with slow start, weight overrides
// and the passive per-backend statistics: unit tests on Backend and the
// balancer with an injected clock, then end to end through a live engine.
#pragma once

#include <QObject>

class BalancingTest : public QObject {
  Q_OBJECT
 private slots:
  void equalWeightsAlternate();
  void weightsSplitTrafficProportionally();
  void zeroWeightTakesABackendOutOfRotation();
  void busyBackendFallsThroughToTheNext();
  void ejectionEndsWithASlowStart();
  void readmitEndsAnEjectionAtOnce();
  void overrideReplacesTheConfiguredWeight();
  void outcomesFeedTheEwmaAndFailureCounts();
  // Through the engine: ejected backends get no requests, weights steer the
  // split, counters and the last error are reported, and every change is
  // audited; unknown backends and bad values are refused.
  void engineEjectAndWeightSteerLiveTraffic();
  void engineReportsUpstreamErrorsPerBackend();
  void engineRefusesBadBackendChanges();
  // Load the backends report on /metrics (vLLM / SGLang gauges).
  void loadMetricsAreParsed();
  void reportedLoadSteersLeastOutstanding();
};
