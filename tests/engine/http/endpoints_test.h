// The endpoints beyond chat through a real engine and simulators on
// loopback: embeddings cached per input, the Responses API with affinity to
// the backend that stores each response, and passthrough routes.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class EndpointsTest : public QObject {
  Q_OBJECT
 private slots:
  void embeddingsBatchSendsOnlyMissingInputs();
  void embeddingsKeysFollowFormatAndTenant();
  void embeddingsAreLimitedByInputTokens();
  void embeddingsWaitInTheQueueNotAt503();
  void embeddingsAreNeverGivenAChatAnswer();
  void embeddingsBadInputIsA400();
  void responsesContinueOnTheBackendThatStoredThem();
  void responsesLostOwnerIsBalancedAndSaysSo();
  void responsesOwnersAreSharedThroughRedis();
  void responsesStreamFailureEndsWithTheErrorEvent();
  void passthroughRoutesReachTheNamedPool();
  void poolsServeOnlyTheirEndpoints();
};
