// The Fleet page against real spillwayd processes over gRPC: remote engines,
// a canary-first push, every page remote; its model.
// The console against a real embedded engine (offscreen); the fixture is
// tests/ui/console_fixture.h. The class is declared here so that moc reads
// only this header: its lexer does not understand raw string literals.
#pragma once

#include <QObject>

#include "ui/console_fixture.h"

class ConsoleFleetTest : public QObject, protected spillway::testing::ConsoleFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { setUpRun("console_fleet_test"); }
  void init() { startConsole(); }
  void cleanup() { stopConsole(); }
  void fleetShowsRemoteEnginesAndPushesCanaryFirst();
  void fleetPageListsTheReplicasSharingARedis();
  void everyPageWorksAgainstARemoteSpillwayd();
  void fleetModelPassesTheModelTester();
};
