// The console against a real embedded engine (offscreen) and against real
// spillwayd processes over gRPC; see console_test.cc.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>
#include <QTemporaryDir>
#include <memory>

#include "control/local_client.h"
#include "engine.h"
#include "ui/main_window.h"

class ConsoleTest : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void init();
  void cleanup();
  void backendsModelPassesTheModelTester();
  void drainFromTheBackendsPage();
  void ejectAndReweighFromTheBackendsPage();
  void switchPolicyAndSeeBackOffsOnTheBackendsPage();
  void applyValidConfigFromThePoliciesPage();
  void configFormModelPassesTheModelTester();
  void formEditsValidateAndApply();
  void invalidConfigShowsLocatedErrorsAndChangesNothing();
  void rollbackFromTheHistory();
  void overviewShowsLiveTraffic();
  void overviewChartsRecordedHistory();
  void staysResponsiveUnderLoad();
  void fleetShowsRemoteEnginesAndPushesCanaryFirst();
  void everyPageWorksAgainstARemoteSpillwayd();
  void themesSwitchAndAreRemembered();
  void windowRemembersItsPage();
  void fleetModelPassesTheModelTester();
  void auditFiltersAndExportsCsv();
  void alertRulesFireAfterTheirDurationAndClear();
  void alertThresholdsAreRemembered();
  void alertBannerShowsOnTheOverview();
  void figuresFromLaterCapabilitiesBecomeTiles();
  void admissionPageShowsQueuesAndPinsDegradation();
  void cachePageShowsTiersLooksUpAndPurges();
  void liveSeriesKeepsItsWindow();
  void gpuPageDrawsInstancesAndPlansLayouts();
  void trafficDrillRunsAndStops();
  void trafficDrillRunsAScenarioFile();

 private:
  QTemporaryDir home_;  // HOME for the whole run: settings, token files
  std::unique_ptr<spillway::Engine> engine_;
  std::unique_ptr<spillway::control::LocalEngineClient> client_;
  std::unique_ptr<spillway::ui::MainWindow> window_;
};
