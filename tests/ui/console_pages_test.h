// The Admission, Cache, GPUs, Traffic drill and Usage pages, and the rolling lines
// they draw.
// The console against a real embedded engine (offscreen); the fixture is
// tests/ui/console_fixture.h. The class is declared here so that moc reads
// only this header: its lexer does not understand raw string literals.
#pragma once

#include <QObject>

#include "ui/console_fixture.h"

class ConsolePagesTest : public QObject, protected spillway::testing::ConsoleFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { setUpRun("console_pages_test"); }
  void init() { startConsole(); }
  void cleanup() { stopConsole(); }
  void admissionPageShowsQueuesAndPinsDegradation();
  void cachePageShowsTiersLooksUpAndPurges();
  void liveSeriesKeepsItsWindow();
  void gpuPageDrawsInstancesAndPlansLayouts();
  void trafficDrillRunsAndStops();
  void trafficDrillRunsAScenarioFile();
  void usagePageRanksTenantsAndListsTraceIds();
};
