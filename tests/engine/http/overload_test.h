// The gateway's own limits (server.overload) on real loopback sockets: a
// connection past max_connections or max_connections_per_client is told
// 503 gateway_overloaded with Retry-After and closed; near the limit,
// answers close their connections; a request past max_active_requests is
// refused before its body is read while the streams in flight finish; a
// memory budget (with an injected gauge) turns keep-alive off, then
// refuses, then lets requests in again.
#pragma once

#include <QObject>

class OverloadTest : public QObject {
  Q_OBJECT
 private slots:
  void connectionLimitRefusesWith503();
  void perClientLimitCountsOpenConnections();
  void activeRequestLimitRefusesBeforeTheBody();
  void memoryBudgetTurnsKeepAliveOffThenRefuses();
};
