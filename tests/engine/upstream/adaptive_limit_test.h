// A backend's learned concurrency limit against a modelled server: it
// converges from above and below, cuts once per overload burst, and ignores
// requests that are slow for their length rather than for queueing.
#pragma once

#include <QObject>

class AdaptiveLimitTest : public QObject {
  Q_OBJECT
 private slots:
  void learnedLimitConvergesFromAboveAndBelow();
  void learnedLimitCutsOnOverloadOncePerBurst();
  void learnedLimitIgnoresSlowRequestsBelowTheLimit();
  void learnedLimitFollowsTheBackendsReportedQueue();
};
