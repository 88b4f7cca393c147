// The gateway queue on a private io_context: strict priority between
// classes, VTC fairness between tenants, waiters placed on other backends,
// shedding when full or when a deadline cannot be met, timeouts, drops when
// no backend can return.
#pragma once

#include <QObject>

class AdmissionQueueTest : public QObject {
  Q_OBJECT
 private slots:
  void queueServesClassesInStrictPriority();
  void queuePlacedWaitersDoNotHoldBackOthers();
  void queueSharesFairlyByTokensBetweenTenants();
  void queueShedsLowestClassWhenFull();
  void queueShedsWhatCannotMeetItsDeadline();
  void queuePredictsWaitsAndCountsObjectives();
  void queueRefusesAtOnceWhatAStarvedClassCannotServe();
  void queueRefusesAtOnceWhatATenantOverItsShareWillNotGet();
  void queueServesShortestFirstWithAgingOrInArrivalOrder();
  void queueWaiterTimesOutAtItsDeadline();
  void queueDecidesAtTheDoorAndLetsTheCallerDecideAtTheObjective();
  void idleServiceIsNotBankedAgainstATenant();
  void aQuietSpellDoesNotReadAsASlowPool();
  void queuePredictsATenantsTurnFromItsFairnessLead();
  void shortestFirstKeepsTheLastFreeSlotFromLongRequests();
  void sleepingWaitersGoWithTheirWorkerOrTheQueue();
  void queueDropsWaitersWhenNoBackendCanReturn();
};
