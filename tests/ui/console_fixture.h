// What every console test starts from: a temporary HOME and test settings
// for the run, then for each test a real embedded engine (two instant
// simulators serving model m) with the main window over it, offscreen.
// Each page's test class derives from it and calls setUpRun() from
// initTestCase(), startConsole() from init() and stopConsole() from
// cleanup().
#pragma once

#include <QTemporaryDir>
#include <memory>
#include <string>

#include "control/local_client.h"
#include "engine.h"
#include "ui/main_window.h"

namespace spillway::testing {

// Backends a and b serving model m, answering at once.
extern const char* const kTwo;
// A chat request for model m.
extern const std::string kChat;

class ConsoleFixture {
 protected:
  // Per run: HOME, XDG dirs, Qt's test paths and settings, no keyring bus.
  void setUpRun(const char* app_name);
  // Per test: the engine, its local client, the main window (shown).
  void startConsole();
  void stopConsole();

  QTemporaryDir home_;  // HOME for the whole run: settings, token files
  std::unique_ptr<spillway::Engine> engine_;
  std::unique_ptr<spillway::control::LocalEngineClient> client_;
  std::unique_ptr<spillway::ui::MainWindow> window_;
};

}  // namespace spillway::testing
