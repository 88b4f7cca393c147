// The cache through the gateway, on real sockets: hit / miss / bypass and
// the opt-in and opt-out headers, replay between JSON and SSE, tenant
// scoping, the disk tier across an engine restart, a burst of identical
// requests reaching the backend once (with a slow waiter and stream and
// JSON waiters), a leader whose upstream breaks, stale answers at
// degradation level 1 and with no backend (injected clock), operator
// lookups and purges, and the Redis tier shared by two engines and killed.
#pragma once

#include <QObject>

class CacheGatewayTest : public QObject {
  Q_OBJECT
 private slots:
  void missThenHitAndBypassRules();
  void replaysInTheFormAsked();
  void entriesAreScopedPerTenant();
  void diskTierSurvivesARestart();
  void burstReachesTheBackendOnce();
  void brokenLeaderNeitherHangsWaitersNorIsStored();
  void staleAnswersWhenDegradedOrWithoutBackends();
  void operatorLooksUpAndPurges();
  void redisTierIsSharedAndSkippedWhenDown();
};
