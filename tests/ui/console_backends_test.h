// The Backends page: its model, drain, eject and reweigh, a policy switch
// with back-offs.
// The console against a real embedded engine (offscreen); the fixture is
// tests/ui/console_fixture.h. The class is declared here so that moc reads
// only this header: its lexer does not understand raw string literals.
#pragma once

#include <QObject>

#include "ui/console_fixture.h"

class ConsoleBackendsTest : public QObject, protected spillway::testing::ConsoleFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { setUpRun("console_backends_test"); }
  void init() { startConsole(); }
  void cleanup() { stopConsole(); }
  void backendsModelPassesTheModelTester();
  void drainFromTheBackendsPage();
  void ejectAndReweighFromTheBackendsPage();
  void switchPolicyAndSeeBackOffsOnTheBackendsPage();
};
