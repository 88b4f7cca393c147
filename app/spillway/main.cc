// spillway: the operations console with an embedded engine on the default
// config (a simulated fleet), so a new user sees live traffic at once.
//   spillway [--config FILE] [--demo-traffic] [--screenshot DIR]
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QMessageBox>
#include <QTimer>
#include <atomic>
#include <thread>

#include "config/config_loader.h"
#include "control/local_client.h"
#include "engine.h"
#include "sim/load_generator.h"
#include "ui/main_window.h"

using namespace spillway;

namespace {

// Drives the embedded engine with a steady mix while `on` is set.
class DemoTraffic {
 public:
  explicit DemoTraffic(std::string target) : target_(std::move(target)) {}
  ~DemoTraffic() { set(false); }
  void set(bool on) {
    if (on == on_.load()) return;
    on_ = on;
    if (on) {
      thread_ = std::thread([this] {
        while (on_) {
          v1::Scenario s;
          s.set_target(target_);
          for (auto [model, weight, stream] : {std::tuple{"spillway-small", 8u, false}, {"spillway-large", 2u, true}}) {
            auto* c = s.add_classes();
            c->set_model(model);
            c->set_weight(weight);
            c->set_stream(stream);
            c->set_max_tokens(24);
          }
          auto* p = s.add_phases();
          p->set_duration_ms(1000);
          p->set_rate(25);
          s.set_drain_timeout_ms(5000);
          (void)sim::runLoad(s);
        }
      });
    } else if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  std::string target_;
  std::atomic<bool> on_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName("Spillway");
  QApplication::setApplicationName("spillway");
  QCommandLineParser cli;
  cli.setApplicationDescription("Spillway operations console");
  cli.addHelpOption();
  QCommandLineOption config_opt("config", "YAML config for the embedded engine (default: embedded default)", "file");
  QCommandLineOption demo_opt("demo-traffic", "start with demo traffic on");
  QCommandLineOption shot_opt("screenshot", "render every page with live data to PNG files in DIR, then exit", "dir");
  cli.addOptions({config_opt, demo_opt, shot_opt});
  cli.process(app);

  config::LoadResult loaded = cli.isSet(config_opt) ? config::loadYamlFile(cli.value(config_opt).toStdString())
                                                    : config::loadYaml(config::defaultConfigYaml(), "default.yaml");
  if (!loaded.ok()) {
    QMessageBox::critical(nullptr, "Spillway", QString::fromStdString(config::formatErrors(loaded.errors)));
    return 1;
  }
  auto engine = Engine::start(loaded.config, EngineOptions{"", "console"});
  if (!engine.ok()) {
    QMessageBox::critical(nullptr, "Spillway", QString::fromStdString(std::string(engine.status().message())));
    return 1;
  }
  control::LocalEngineClient client(**engine, "console");
  ui::MainWindow window(client, QString::fromStdString((*engine)->url()));
  DemoTraffic demo((*engine)->url());
  QAction* toggle = window.addToggle(QObject::tr("Demo traffic"), QObject::tr("Drive the embedded engine with a steady mix"));
  QObject::connect(toggle, &QAction::toggled, [&](bool on) { demo.set(on); });
  window.show();
  if (cli.isSet(demo_opt) || cli.isSet(shot_opt)) toggle->setChecked(true);

  if (cli.isSet(shot_opt)) {
    const QString dir = cli.value(shot_opt);
    QDir().mkpath(dir);
    QTimer::singleShot(8000, [&] {
      for (int i = 0; i < window.pageCount(); ++i) {
        window.showPage(i);
        QApplication::processEvents();  // the 1 s timer has kept the pages live
        window.grab().save(QDir(dir).filePath(QString("%1.png").arg(window.pageName(i).toLower().replace(' ', '-'))));
      }
      toggle->setChecked(false);
      QApplication::quit();
    });
  }
  const int rc = QApplication::exec();
  demo.set(false);
  return rc;
}
