// Several engines as one gateway, against a real redis-server the test
// starts on loopback: they register and count each other (a configured
// backend concurrency is divided among them), a rate limit holds across
// them with Redis up and — with fleet.replicas — with Redis down from the
// start, a config applied on one is followed by the others and by one
// started later (each keeps its own listener), a Redis that comes back
// empty is refilled, and a file-sourced fleet says that the file wins.
#pragma once

#include <QObject>

class FleetTest : public QObject {
  Q_OBJECT
 private slots:
  void replicasCountEachOtherAndDivideBackends();
  void limitHoldsAcrossReplicasWithRedisUp();
  void limitHoldsAcrossReplicasWithRedisDown();
  void configFollowsEveryReplicaAndLaterOnes();
  void redisBackEmptyIsRefilled();
  void fileSourceIsNotPublished();
  void backendSecretsStayOnTheirReplica();
};
