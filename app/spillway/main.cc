// spillway: the operations console. By default it embeds an engine on the
// default config (a simulated fleet), so a new user sees live traffic at
// once; --connect opens it on a remote spillwayd instead.
//   spillway [--config FILE] [--demo-traffic | --no-demo-traffic] [--scenario NAME] [--screenshot DIR]
//   spillway --connect HOST:PORT [--token-file FILE] [--ca FILE] [--server-name NAME]
//   spillway --fleet HOST:PORT [--token-file FILE] [--ca FILE]   (every replica HOST resolves to)
#include <QApplication>
#include <QComboBox>
#include <QCommandLineParser>
#include <QDir>
#include <QStandardPaths>
#include <QMessageBox>
#include <QSettings>
#include <QTimer>
#include <QToolBar>
#include <QTreeView>
#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "common/url.h"
#include "config/config_loader.h"
#include "control/grpc_client.h"
#include "control/local_client.h"
#include "control/tls.h"
#include "engine.h"
#include "sim/load_generator.h"
#include "ui/config_form_model.h"
#include "ui/fleet_page.h"
#include "ui/gpu_page.h"
#include "ui/main_window.h"
#include "ui/policies_page.h"
#include "ui/text.h"
#include "ui/theme.h"

using namespace spillway;

namespace {

// The demo scenarios, an hour of load each (cancelled when switched):
// "steady" a light mix; "burst" quiet with a spike every fifth second;
// "busy fleet" the seed's incident, more load than the simulated fleet has
// slots for. One long run, so the charts show the load, not gaps between
// short runs draining.
const char* const kScenarios[] = {"steady", "burst", "busy fleet"};

v1::Scenario demoScenario(const std::string& target, int scenario) {
  v1::Scenario s;
  s.set_target(target);
  s.set_drain_timeout_ms(5000);
  for (auto [model, weight, stream] : {std::tuple{"spillway-small", 8u, false}, {"spillway-large", 2u, true}}) {
    auto* c = s.add_classes();
    c->set_model(model);
    c->set_weight(weight);
    c->set_stream(stream);
    c->set_max_tokens(scenario == 2 ? 64 : 24);
    if (!stream) {
      // The small model's questions repeat (a Zipf law over 500 of them) and
      // are deterministic: the Cache page has hits to show.
      c->set_deterministic(true);
      c->set_distinct_prompts(500);
      c->set_zipf_s(1.0);
    }
  }
  // Embeddings, as a RAG pipeline sends them: batches of 16 chunks drawn
  // from 2,000 (a Zipf law), so most batches are partly cached.
  auto* rag = s.add_classes();
  rag->set_name("embeddings");
  rag->set_model("spillway-small");
  rag->set_endpoint("embeddings");
  rag->set_weight(3);
  rag->set_batch_size(16);
  rag->set_prompt_tokens_min(24);
  rag->set_prompt_tokens_max(24);
  rag->set_distinct_prompts(2000);
  rag->set_zipf_s(1.0);
  auto phase = [&](uint32_t ms, double rate) {
    auto* p = s.add_phases();
    p->set_duration_ms(ms);
    p->set_rate(rate);
  };
  switch (scenario) {
    case 1:
      for (int i = 0; i < 720; ++i) {
        phase(4000, 10);
        phase(1000, 150);
      }
      break;
    case 2: phase(3'600'000, 120); break;
    default: phase(3'600'000, 25); break;
  }
  return s;
}

// Drives the embedded engine with the chosen scenario while on. Switching
// scenario cancels the running one (its requests drain) and starts the next.
// Turning it off never waits on the UI thread: the drain finishes in the
// background and the thread is joined when the demo starts again or at exit.
class DemoTraffic {
 public:
  explicit DemoTraffic(std::string target) : target_(std::move(target)) {}
  ~DemoTraffic() {
    set(false);
    if (thread_.joinable()) thread_.join();
  }
  void setScenario(int s) {
    scenario_ = s;
    cancel_ = true;  // the loop below restarts with the new one
  }
  void set(bool on) {
    if (on == on_.load()) return;
    on_ = on;
    if (on) {
      if (thread_.joinable()) thread_.join();  // the previous run's drain, if still going
      thread_ = std::thread([this] {
        while (on_) {
          cancel_ = false;
          (void)sim::runLoad(demoScenario(target_, scenario_), {}, &cancel_);
        }
      });
    } else {
      cancel_ = true;
    }
  }

 private:
  std::string target_;
  std::atomic<bool> on_{false};
  std::atomic<bool> cancel_{false};
  std::atomic<int> scenario_{0};
  std::thread thread_;
};

// Every page, plus the Policies page's YAML view; the form shows the help of
// one field, as it does when a user selects it.
void saveScreenshots(ui::MainWindow& window, const QString& dir) {
  QDir().mkpath(dir);
  auto shoot = [&](const QString& name) {
    QApplication::processEvents();  // the 1 s timer has kept the pages live
    window.grab().save(QDir(dir).filePath(name + ".png"));
  };
  auto* form = window.policies()->form();
  const QModelIndex weight = form->indexOfPath("backends[0].weight");
  window.policies()->formView()->expand(weight.parent());
  window.policies()->formView()->setCurrentIndex(weight);
  for (int i = 0; i < window.pageCount(); ++i) {
    window.showPage(i);
    shoot(window.pageName(i).toLower().replace(' ', '-'));
  }
  for (int i = 0; i < window.pageCount(); ++i) {
    if (window.pageName(i) == "Policies") window.showPage(i);
  }
  window.policies()->showView(1);
  shoot("policies-yaml");
  window.policies()->showView(0);
  // The GPU planner with the article's case planned.
  auto* planner = window.gpus()->planner();
  planner->show();
  planner->plan();
  QApplication::processEvents();
  planner->grab().save(QDir(dir).filePath("gpu-planner.png"));
  planner->hide();
}

}  // namespace

// Every address HOST resolves to, as "ADDRESS:PORT" ("[v6]:PORT"): the
// replicas behind a headless Service's one name.
static absl::StatusOr<std::vector<std::string>> resolveAll(const std::string& host_port) {
  auto hp = common::parseHostPort(host_port);
  if (!hp.ok()) return absl::InvalidArgumentError("--fleet: " + std::string(hp.status().message()));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(hp->host.c_str(), nullptr, &hints, &res); rc != 0) {
    return absl::NotFoundError("--fleet: cannot resolve " + hp->host + ": " + gai_strerror(rc));
  }
  std::vector<std::string> out;
  for (addrinfo* a = res; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = a->ai_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
                                                 : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
    if (!inet_ntop(a->ai_family, addr, text, sizeof text)) continue;
    std::string address = a->ai_family == AF_INET6 ? "[" + std::string(text) + "]" : std::string(text);
    address += ":" + std::to_string(hp->port);
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  }
  freeaddrinfo(res);
  if (out.empty()) return absl::NotFoundError("--fleet: " + hp->host + " has no addresses");
  return out;
}

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName("Spillway");
  QApplication::setApplicationName("spillway");
  QCommandLineParser cli;
  cli.setApplicationDescription("Spillway operations console");
  cli.addHelpOption();
  QCommandLineOption config_opt("config", "YAML config for the embedded engine (default: embedded default)", "file");
  QCommandLineOption demo_opt("demo-traffic", "start with demo traffic on (the default on the embedded default config)");
  QCommandLineOption no_demo_opt("no-demo-traffic", "start with demo traffic off");
  QCommandLineOption scenario_opt("scenario", "demo traffic scenario: steady, burst, busy-fleet", "name");
  QCommandLineOption shot_opt("screenshot", "render every page with live data to PNG files in DIR, then exit", "dir");
  QCommandLineOption theme_opt("theme", "system, light or dark (remembered otherwise)", "theme");
  QCommandLineOption connect_opt("connect", "open the console on a remote spillwayd's control plane", "host:port");
  QCommandLineOption fleet_opt("fleet",
                               "open the console on every replica a name resolves to (a Kubernetes headless "
                               "Service such as spillway-control.spillway:50051): the first in the window, all "
                               "on its Fleet page",
                               "host:port");
  QCommandLineOption token_opt("token-file", "with --connect: file holding the bearer token", "file");
  QCommandLineOption ca_opt("ca", "with --connect: PEM certificate to trust (enables TLS)", "file");
  QCommandLineOption name_opt("server-name", "with --connect: name expected in the certificate", "name");
  cli.addOptions({config_opt, demo_opt, no_demo_opt, scenario_opt, shot_opt, theme_opt, connect_opt, fleet_opt, token_opt,
                  ca_opt, name_opt});
  cli.process(app);

  ui::Theme theme = ui::savedTheme();
  if (cli.isSet(theme_opt)) {
    const QString t = cli.value(theme_opt);
    theme = t == "dark" ? ui::Theme::kDark : t == "light" ? ui::Theme::kLight : ui::Theme::kSystem;
  }
  ui::applyTheme(theme);

  // --fleet: every address the name resolves to, each one replica.
  std::vector<std::string> replicas;
  if (cli.isSet(fleet_opt)) {
    auto resolved = resolveAll(cli.value(fleet_opt).toStdString());
    if (!resolved.ok()) {
      QMessageBox::critical(nullptr, "Spillway", ui::qs(resolved.status().message()));
      return 1;
    }
    replicas = *resolved;
  }
  if (cli.isSet(connect_opt) || !replicas.empty()) {
    control::GrpcClientOptions o;
    o.address = replicas.empty() ? cli.value(connect_opt).toStdString() : replicas.front();
    if (!replicas.empty() && cli.isSet(ca_opt) && !cli.isSet(name_opt)) {
      o.server_name = cli.value(fleet_opt).section(':', 0, 0).toStdString();  // the certificate's name, not the IP
    }
    o.ca_file = cli.value(ca_opt).toStdString();
    if (cli.isSet(name_opt)) o.server_name = cli.value(name_opt).toStdString();
    if (cli.isSet(token_opt)) {
      auto token = control::readTokenFile(cli.value(token_opt).toStdString());
      if (!token.ok()) {
        QMessageBox::critical(nullptr, "Spillway", ui::qs(token.status().message()));
        return 1;
      }
      o.token = *token;
    }
    auto client = control::GrpcEngineClient::connect(o);
    if (!client.ok()) {
      QMessageBox::critical(nullptr, "Spillway", ui::qs(client.status().message()));
      return 1;
    }
    auto* window = ui::MainWindow::openOwned(std::move(*client), QString::fromStdString(o.address));
    for (const auto& address : replicas) {
      ui::RemoteEngine e;
      e.name = cli.value(fleet_opt).section(':', 0, 0) + "/" + QString::fromStdString(address);
      e.options = o;
      e.options.address = address;
      window->fleet()->addEngine(e);
    }
    return QApplication::exec();
  }

  config::LoadResult loaded = cli.isSet(config_opt) ? config::loadYamlFile(cli.value(config_opt).toStdString())
                                                    : config::loadYaml(config::defaultConfigYaml(), "default.yaml");
  if (!loaded.ok()) {
    QMessageBox::critical(nullptr, "Spillway", QString::fromStdString(config::formatErrors(loaded.errors)));
    return 1;
  }
  // The embedded engine keeps its config versions and audit log in memory,
  // but its cache's disk tier in the user's cache directory, so answers
  // survive a restart of the console (a config's own cache.disk.path wins).
  if (auto* disk = loaded.config.mutable_cache()->mutable_disk(); disk->path().empty() && !disk->disabled()) {
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::CacheLocation);
    if (!dir.isEmpty() && QDir().mkpath(dir)) disk->set_path(QDir(dir).filePath("response-cache.db").toStdString());
  }
  auto engine = Engine::start(loaded.config, EngineOptions{"", "console"});
  if (!engine.ok()) {
    QMessageBox::critical(nullptr, "Spillway", ui::qs(engine.status().message()));
    return 1;
  }
  control::LocalEngineClient client(**engine, "console");
  ui::MainWindow window(client, QString::fromStdString((*engine)->url()));
  DemoTraffic demo((*engine)->url());
  QAction* toggle = window.addToggle(QObject::tr("Demo traffic"), QObject::tr("Drive the embedded engine with the chosen scenario (Ctrl+T)"));
  toggle->setShortcut(QKeySequence("Ctrl+T"));
  auto* scenario = new QComboBox(&window);
  scenario->setToolTip(QObject::tr("Demo traffic scenario"));
  for (const char* s : kScenarios) scenario->addItem(s);
  scenario->setCurrentIndex(QSettings().value("demo/scenario", 0).toInt());
  if (cli.isSet(scenario_opt)) {
    const int i = scenario->findText(cli.value(scenario_opt).replace('-', ' '));
    if (i < 0) {
      QMessageBox::critical(nullptr, "Spillway", "unknown --scenario (steady, burst, busy-fleet)");
      return 2;
    }
    scenario->setCurrentIndex(i);
  }
  demo.setScenario(scenario->currentIndex());
  // Remembered when the operator picks one (not for --scenario).
  QObject::connect(scenario, &QComboBox::currentIndexChanged, [&](int i) {
    demo.setScenario(i);
    QSettings().setValue("demo/scenario", i);
  });
  window.toolbar()->addWidget(scenario);
  // A new user sees live traffic at once: on the embedded default fleet the
  // demo runs unless turned off (the switch's last state is remembered).
  const bool demo_default = !cli.isSet(config_opt) && QSettings().value("demo/on", true).toBool();
  const bool demo_on = cli.isSet(shot_opt) || cli.isSet(demo_opt) || (demo_default && !cli.isSet(no_demo_opt));
  QObject::connect(toggle, &QAction::toggled, [&](bool on) {
    demo.set(on);
    if (!cli.isSet(shot_opt)) QSettings().setValue("demo/on", on);
  });
  window.show();
  if (demo_on) toggle->setChecked(true);

  if (cli.isSet(shot_opt)) {
    window.resize(1200, 800);  // the same frame every time, whatever the user's saved layout
    QTimer::singleShot(8000, [&] {
      saveScreenshots(window, cli.value(shot_opt));
      toggle->setChecked(false);
      QApplication::quit();
    });
  }
  const int rc = QApplication::exec();
  demo.set(false);
  return rc;
}
