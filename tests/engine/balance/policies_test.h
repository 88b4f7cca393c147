// The balancing policies one by one, on Backend objects with no network:
// smooth weighted round robin's sequences, weighted random's shares,
// latency weights against the article's formula and its 60 % cut, least
// outstanding's preference, consistent hashing's stability and load bound,
// prefix affinity's stickiness and bounded index, failover skips. Random
// policies take a fixed seed, so each run draws the same numbers.
#pragma once

#include <QObject>

class PoliciesTest : public QObject {
  Q_OBJECT
 private slots:
  void smoothRoundRobinAlternatesAndInterleaves();
  void smoothRoundRobinFallsThroughWhenFull();
  void weightedRandomFollowsTheWeights();
  void latencyWeightsFollowTheFormulaAndTheCut();
  void latencyWeightedSendsLessToTheSlowBackend();
  void leastOutstandingPrefersTheLessLoaded();
  void leastOutstandingWeighsByWeightOverActive();
  void consistentHashIsStableWhenBackendsJoinOrLeave();
  void consistentHashRespectsItsLoadBound();
  void prefixAffinityKeepsAGroupUntilItsLoadBound();
  void prefixAffinitySpreadsDifferentGroups();
  void prefixIndexIsBounded();
  void everyPolicySkipsTriedBackends();
  void unavailableBackendsAreNeverPicked();
  void effectiveSettingsLayerPoolOverUpstreamOverDefaults();
};
