// Rate limits with injected clocks and no network: GCRA arithmetic (burst,
// refill, exact under concurrent use, refunds and debt), limits all-or-nothing
// across scopes, token buckets reconciled with real usage.
#pragma once

#include <QObject>

class LimitsTest : public QObject {
  Q_OBJECT
 private slots:
  void gcraBurstThenRefill();
  void gcraIsExactUnderConcurrency();
  void gcraRefundsAndDebt();
  void rateLimitsAreAllOrNothing();
  void tokensAreReconciledWithUsage();
};
