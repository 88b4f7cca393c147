// Every error a client can get from the gateway: OpenAI-style JSON bodies
// with the right status, for bad input, protocol abuse, and every way an
// upstream can fail.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class GatewayErrorsTest : public QObject {
  Q_OBJECT
 private slots:
  void badRequests();
  void bodyTooLarge();
  void headersTooLarge();
  void slowClientsGet408();
  void requestSmugglingIsRejected();
  void noHealthyBackendIs503WithRetryAfter();
  void refusedConnectionIs502AndFailsOver();
  void slowUpstreamIs504();
  void upstreamFailureMidStreamEndsWithAnErrorEvent();
  void allBackendsAtTheirLimitQueueThenShed429();
  void anObjectiveEndsTheWaitLongBeforeTheTimeout();
  void upstreamErrorsPassThrough();
  void busyBackendIsRequeuedNotRelayed();
  void degradationLevelsAnswerAsConfigured();
  void aDegradedClassIsAnsweredInsteadOfShed();
  void rateLimitsAnswer429WithOpenAIHeaders();
  void streamRunningThroughItsTokenBudgetIsCutOrCharged();
  void staleKeepAliveIsRetriedOnAFreshConnection();
  void upstreamClosingBeforeAnsweringIs502();
  void streamWhoseUpstreamSendsNothingIs504();
};
