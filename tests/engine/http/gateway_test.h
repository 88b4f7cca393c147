// The gateway end to end on real loopback sockets: OpenAI endpoints through
// the engine to in-process simulators, streaming and not, with real clients
// (our Beast client, curl, promtool), keep-alive pooling, backpressure and
// graceful drain.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class GatewayTest : public QObject {
  Q_OBJECT
 private slots:
  void listsTheModelsOfEveryPool();
  void nonStreamingCompletion();
  void streamingCompletion();
  void roundRobinSpreadsRequests();
  void keepAliveReusesUpstreamConnections();
  void curlGetsStreamingAndNonStreamingAnswers();
  void healthAndReadiness();
  // The heads the gateway writes itself, byte for byte where it matters:
  // the request upstream (path prefix, Host, Authorization, Accept,
  // Content-Length) and the answer to the client (copied and dropped
  // headers, Connection: close, Content-Length).
  void headersOnTheWireBothWays();
  void metricsAreValidPrometheusText();
  void metricsListenerKeepsMetricsFromApiClients();
  // A client that stops reading must not make the gateway buffer the rest of
  // the answer: backpressure reaches the upstream, which stops generating.
  void slowReaderBackpressuresTheUpstream();
  void drainLetsInFlightStreamsFinish();
  void drainClosesIdleConnectionsAndCutsAtItsTimeout();
  void stopClosesClientConnectionsOfAnEngineKeptAlive();
};
