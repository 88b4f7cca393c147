// The window: themes, the page it remembers, the Audit page filters and CSV
// export.
// The console against a real embedded engine (offscreen); the fixture is
// tests/ui/console_fixture.h. The class is declared here so that moc reads
// only this header: its lexer does not understand raw string literals.
#pragma once

#include <QObject>

#include "ui/console_fixture.h"

class ConsoleWindowTest : public QObject, protected spillway::testing::ConsoleFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { setUpRun("console_window_test"); }
  void init() { startConsole(); }
  void cleanup() { stopConsole(); }
  void themesSwitchAndAreRemembered();
  void windowRemembersItsPage();
  void auditFiltersAndExportsCsv();
};
