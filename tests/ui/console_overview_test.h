// The Overview: live traffic, recorded history, responsiveness under load,
// alert rules and the banner, tiles from later capabilities.
// The console against a real embedded engine (offscreen); the fixture is
// tests/ui/console_fixture.h. The class is declared here so that moc reads
// only this header: its lexer does not understand raw string literals.
#pragma once

#include <QObject>

#include "ui/console_fixture.h"

class ConsoleOverviewTest : public QObject, protected spillway::testing::ConsoleFixture {
  Q_OBJECT
 private slots:
  void initTestCase() { setUpRun("console_overview_test"); }
  void init() { startConsole(); }
  void cleanup() { stopConsole(); }
  void overviewShowsLiveTraffic();
  void overviewChartsRecordedHistory();
  void staysResponsiveUnderLoad();
  void alertRulesFireAfterTheirDurationAndClear();
  void alertThresholdsAreRemembered();
  void alertBannerShowsOnTheOverview();
  void figuresFromLaterCapabilitiesBecomeTiles();
};
