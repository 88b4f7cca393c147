// The cache's coalesce stage on its own: no engine, no sockets — a routing
// table built by hand, a recording client channel, the leader's flight fed
// by the test.
#pragma once

#include <QObject>

class CoalesceStageTest : public QObject {
  Q_OBJECT
 private slots:
  void leaderGoesOnMarkedMiss();
  void waiterInTheSameFormIsRelayedLive();
  void waiterInAnotherFormGetsTheWholeAnswerReplayed();
  void waiterOfABrokenStreamGetsTheErrorEventAndCloses();
  void leaseLeavesTheFlightWithTheRequest();
  void uncacheableRequestsDoNotWait();
};
