// Admission's parts one by one, with injected clocks and no network: GCRA
// arithmetic (burst, refill, exact under concurrent use, refunds), rate
// limits all-or-nothing across scopes and token reconciliation, the
// learned concurrency limit against a modelled server, the gateway queue's
// order (strict priority, VTC fairness between tenants, requeues first),
// deadlines and shedding, degradation's hysteresis and pins, and the level-2
// request rewrite.
#pragma once

#include <QObject>

class AdmissionTest : public QObject {
  Q_OBJECT
 private slots:
  void gcraBurstThenRefill();
  void gcraIsExactUnderConcurrency();
  void gcraRefundsAndDebt();
  void rateLimitsAreAllOrNothing();
  void tokensAreReconciledWithUsage();
  void keysResolveTenantAndPriority();
  void poolClassIsARouteRule();
  void learnedLimitConvergesFromAboveAndBelow();
  void learnedLimitCutsOnOverloadOncePerBurst();
  void learnedLimitIgnoresSlowRequestsBelowTheLimit();
  void queueServesClassesInStrictPriority();
  void queuePlacedWaitersDoNotHoldBackOthers();
  void queueSharesFairlyByTokensBetweenTenants();
  void queueShedsLowestClassWhenFull();
  void queueShedsWhatCannotMeetItsDeadline();
  void queueWaiterTimesOutAtItsDeadline();
  void queueDropsWaitersWhenNoBackendCanReturn();
  void degradationHasHysteresisAndDwell();
  void degradationFollowsErrorRateAndBackendsOut();
  void degradationPinOverridesAndReleases();
  void degradationAppliesByClass();
  void rewriteCapsTokensAddsInstructionAndSwapsModel();
};
