#include "ui/console_fixture.h"

#include <QtTest>
#include <QSettings>
#include <QStandardPaths>

#include "support/test_config.h"
#include "ui/backends_page.h"
#include "ui/fleet_page.h"
#include "ui/policies_page.h"

namespace spillway::testing {

const char* const kTwo = kTwoInstantSims;
const std::string kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";

void ConsoleFixture::setUpRun(const char* app_name) {
  // Settings and the fleet token file go to test locations under a
  // temporary HOME (Qt's test mode alone writes under ~/.qttest).
  QVERIFY(home_.isValid());
  qputenv("HOME", home_.path().toUtf8());
  qunsetenv("XDG_CONFIG_HOME");
  qunsetenv("XDG_DATA_HOME");
  QStandardPaths::setTestModeEnabled(true);
  QCoreApplication::setOrganizationName("SpillwayTest");
  QCoreApplication::setApplicationName(app_name);
  QSettings().clear();
  // No keyring on a bus that does not exist: fleet tokens take the 0600 file
  // (token_store_keyring_test covers a real keyring).
  qputenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/spillway-test-bus");
  QFile::remove(ui::FleetPage::tokenFilePath());
}

void ConsoleFixture::startConsole() {
  auto e = Engine::start(configFromYaml(engineYaml(kTwo)), EngineOptions{"", "test", false});
  QVERIFY(e.ok());
  engine_ = std::move(*e);
  client_ = std::make_unique<control::LocalEngineClient>(*engine_, "console-test");
  window_ = std::make_unique<ui::MainWindow>(*client_, "test");
  window_->backends()->setConfirm([](const QString&) { return true; });
  window_->policies()->setConfirm([](const QString&) { return true; });
  window_->show();
}

void ConsoleFixture::stopConsole() {
  window_.reset();
  client_.reset();
  engine_.reset();
}

}  // namespace spillway::testing
