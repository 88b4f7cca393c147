// Upstream resilience: passive outlier detection (ejection, its length, the
// pool cap, the return), back-off after 429/503 with and without
// Retry-After, retries on another backend within a budget and never after
// the first byte, a refused backend coming back with health checks off, a
// balancing policy switched live under load, the affinity cookie, and the
// request path's metric caches staying bounded across applies. Unit tests
// use an injected clock; engine tests run simulators on real loopback
// sockets and wait for conditions, never for time.
#pragma once

#include <QObject>

class ResilienceTest : public QObject {
  Q_OBJECT
 private slots:
  void outlierEjectionGrowsAndIsCapped();
  void backOffFollowsRetryAfter();
  void retryBudgetBoundsRetries();
  void failingBackendIsEjectedAndClientsSeeNoErrors();
  void busyBackendBacksOffAndTheOtherServes();
  void noRetryAfterTheFirstByte();
  void singleAttemptRelaysTheUpstreamAnswer();
  void refusedBackendWithoutHealthChecksComesBack();
  void policySwitchedLiveUnderLoadFailsNothing();
  void affinityCookieIsSetAndHonoured();
  void sessionHeaderKeepsABackend();
  void defaultChainKeysOnWhatTheClientSends();
  void metricCachesStayBoundedAcrossApplies();
};
