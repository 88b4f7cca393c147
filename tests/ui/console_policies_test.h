// The Policies page: applying YAML, the config form and its model, located
// errors, rollback from the history.
// The console against a real embedded engine (offscreen); the fixture is
// tests/ui/console_fixture.h. The class is declared here so that moc reads
// only this header: its lexer does not understand raw string literals.
#pragma once

#include <QObject>

#include "ui/console_fixture.h"

class ConsolePoliciesTest : public QObject, protected spillway::testing::ConsoleFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { setUpRun("console_policies_test"); }
  void init() { startConsole(); }
  void cleanup() { stopConsole(); }
  void applyValidConfigFromThePoliciesPage();
  void configFormModelPassesTheModelTester();
  void formEditsValidateAndApply();
  void invalidConfigShowsLocatedErrorsAndChangesNothing();
  void rollbackFromTheHistory();
};
