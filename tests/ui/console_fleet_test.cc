#include "console_fleet_test.h"

#include <QtTest>
#include <QAbstractItemModelTester>
#include <QClipboard>
#include <QComboBox>
#include <QDialog>
#include <QPushButton>
#include <QTimer>
#include <QDateTime>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPointer>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>

#include <atomic>
#include <thread>

#include <google/protobuf/util/json_util.h>

#include "control/auth.h"
#include "control/control_server.h"
#include "support/redis_server.h"
#include "support/spillwayd_process.h"
#include "support/test_config.h"
#include "support/test_http.h"
#include "ui/alert_rules.h"
#include "ui/admission_page.h"
#include "ui/cache_page.h"
#include "ui/audit_page.h"
#include "ui/backends_page.h"
#include "ui/config_form_model.h"
#include "ui/drill_page.h"
#include "ui/fleet_page.h"
#include "ui/gpu_page.h"
#include "ui/overview_page.h"
#include "ui/page_widgets.h"
#include "ui/policies_page.h"
#include "ui/theme.h"

using namespace spillway;
using namespace spillway::testing;

void ConsoleFleetTest::fleetShowsRemoteEnginesAndPushesCanaryFirst() {
  // Two remote engines with their control planes on loopback; on "west" the
  // console's token is only a viewer, so applying there must fail.
  struct Remote {
    std::unique_ptr<Engine> engine;
    std::unique_ptr<control::ControlServer> server;
  };
  auto remote = [](const std::string& role) {
    Remote r;
    auto yaml = engineYaml(kTwo, "control:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: console, role: " + role +
                                     ", sha256: " + control::TokenAuthority::sha256Hex("fleet-token") + "}\n");
    r.engine = std::move(*Engine::start(configFromYaml(yaml), EngineOptions{"", "test", false}));
    r.server = std::move(*control::ControlServer::start(*r.engine, {r.engine->config().control(), ""}));
    return r;
  };
  Remote east = remote("operator"), west = remote("viewer");
  auto* fleet = window_->fleet();
  QSignalSpy refreshed(fleet, &ui::FleetPage::refreshed);
  for (auto [name, r] : {std::pair{"east", &east}, std::pair{"west", &west}}) {
    ui::RemoteEngine e;
    e.name = name;
    e.options.address = "127.0.0.1:" + std::to_string(r->server->port());
    e.options.token = "fleet-token";
    fleet->addEngine(e);
  }
  QTRY_VERIFY_WITH_TIMEOUT(fleet->model()->state("east") && fleet->model()->state("west") &&
                               fleet->model()->state("east")->reachable && fleet->model()->state("west")->reachable,
                           10000);
  QCOMPARE(fleet->model()->rowCount(), 2);
  QVERIFY(fleet->model()->state("east")->detail.contains("ready"));
  // The token is in a file only the user can read, not in the settings.
  QFile tokens(ui::FleetPage::tokenFilePath());
  QVERIFY(tokens.exists());
  QCOMPARE(tokens.permissions() & (QFile::ReadGroup | QFile::ReadOther), QFileDevice::Permissions());
  QVERIFY(!QSettings().allKeys().join(",").contains("token"));

  auto view = control::LocalEngineClient(*east.engine, "t").getConfig();
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(view->config(), &json, o);
  QString yaml = QString::fromStdString(json);
  QVERIFY(yaml.contains("\"weight\":1"));
  yaml.replace(yaml.indexOf("\"weight\":1"), 10, "\"weight\":4");

  // An invalid config goes nowhere.
  auto bad = fleet->push("backends: [{name: x, url: 'htp://y', models: [m]}]", "bad", {"east", "west"});
  QCOMPARE(bad.size(), size_t{2});
  QVERIFY(!bad[0].applied && !bad[1].applied);
  QVERIFY(bad[0].detail.contains("unsupported scheme"));
  QCOMPARE(east.engine->configHistory().size(), size_t{1});

  // Canary east applies; west refuses (viewer token); the push stops there.
  auto results = fleet->push(yaml, "fleet change", {"east", "west"});
  QCOMPARE(results.size(), size_t{2});
  QVERIFY2(results[0].applied, qPrintable(results[0].detail));
  QCOMPARE(east.engine->config().backends(0).weight(), 4u);
  QVERIFY(!results[1].applied);
  QVERIFY2(results[1].detail.contains("operator role"), qPrintable(results[1].detail));
  QCOMPARE(west.engine->config().backends(0).weight(), 1u);

  // West as canary: it fails first, so east is not touched again.
  auto again = fleet->push(yaml.replace("\"weight\":4", "\"weight\":5"), "second", {"west", "east"});
  QVERIFY(!again[0].applied && !again[1].applied);
  QVERIFY(again[1].detail.contains("skipped"));
  QCOMPARE(east.engine->config().backends(0).weight(), 4u);
  fleet->removeEngine("east");
  fleet->removeEngine("west");
}

void ConsoleFleetTest::fleetPageListsTheReplicasSharingARedis() {
  // Two replicas on one real redis-server, each with its control plane.
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  struct Replica {
    std::unique_ptr<Engine> engine;
    std::unique_ptr<control::ControlServer> server;
  };
  auto replica = [&] {
    Replica r;
    auto yaml = engineYaml(kTwo, "limits:\n  redis: {address: \"127.0.0.1:" + std::to_string(redis.port()) +
                                     "\"}\nfleet: {heartbeat_ms: 100, replica_ttl_ms: 1000}\ncontrol:\n  listen: "
                                     "127.0.0.1:0\n  tokens:\n    - {name: console, role: operator, sha256: " +
                                     control::TokenAuthority::sha256Hex("fleet-token") + "}\n");
    r.engine = std::move(*Engine::start(configFromYaml(yaml), EngineOptions{"", "test", false}));
    r.server = std::move(*control::ControlServer::start(*r.engine, {r.engine->config().control(), ""}));
    r.engine->setControlAddress("127.0.0.1:" + std::to_string(r.server->port()));
    return r;
  };
  Replica a = replica(), b = replica();
  control::LocalEngineClient client(*a.engine, "console");
  ui::MainWindow window(client, "replica a");
  auto* fleet = window.fleet();
  QTRY_VERIFY_WITH_TIMEOUT((window.refresh(), fleet->replicas()->rowCount() == 2), 10000);
  QVERIFY2(fleet->fleetSummary()->text().contains("2 replica(s)"), qPrintable(fleet->fleetSummary()->text()));
  QCOMPARE(fleet->replicas()->item(0, 1)->text(), QString::fromStdString(a.engine->url()));
  QVERIFY(fleet->replicas()->item(0, 6)->text().contains("this engine"));
  QCOMPARE(fleet->replicas()->item(1, 1)->text(), QString::fromStdString(b.engine->url()));

  // "Add these replicas": both control planes become engines of the page,
  // reachable with the one token.
  // (A replica advertises its control plane from its next heartbeat on.)
  QTRY_VERIFY_WITH_TIMEOUT((window.refresh(), fleet->replicasToAdd("fleet-token").size() == 2), 10000);
  auto adds = fleet->replicasToAdd("fleet-token");
  for (const auto& e : adds) fleet->addEngine(e);
  QVERIFY(fleet->replicasToAdd("fleet-token").empty());  // listed now
  QTRY_VERIFY_WITH_TIMEOUT(fleet->model()->state(adds[1].name) && fleet->model()->state(adds[1].name)->reachable,
                           10000);
  for (const auto& e : adds) fleet->removeEngine(e.name);

  // A replica that leaves drops out of the list.
  b.server.reset();
  b.engine->stop();
  QTRY_VERIFY_WITH_TIMEOUT((window.refresh(), fleet->replicas()->rowCount() == 1), 10000);
}

void ConsoleFleetTest::everyPageWorksAgainstARemoteSpillwayd() {
  // Two real spillwayd processes on the default config (simulated fleet).
  SpillwaydProcess a, b;
  QVERIFY2(a.start(SPILLWAYD_PATH), qPrintable(a.error()));
  QVERIFY2(b.start(SPILLWAYD_PATH), qPrintable(b.error()));
  control::GrpcClientOptions opts;
  opts.address = a.controlAddress();
  opts.token = a.token();
  auto connected = control::GrpcEngineClient::connect(opts);
  QVERIFY2(connected.ok(), std::string(connected.status().message()).c_str());
  control::GrpcEngineClient& remote = **connected;
  ui::MainWindow window(remote, "remote");
  window.backends()->setConfirm([](const QString&) { return true; });
  window.policies()->setConfirm([](const QString&) { return true; });

  // Overview: live figures from the remote engine.
  const std::string chat = R"({"model":"spillway-small","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})";
  window.refresh();
  for (int i = 0; i < 3; ++i) QCOMPARE(postJson(a.port(), "/v1/chat/completions", chat).status, 200);
  // The remote feed sends a snapshot a second: the next ones cover the requests.
  QVERIFY(waitFor(
      [&] {
        window.refresh();
        return window.overview()->tileText("success") == "100.0 %";
      },
      10s));
  QCOMPARE(window.overview()->tileText("backends"), "3 / 3");

  // Backends: drain over gRPC.
  QVERIFY(window.backends()->select("sim-small-a"));
  window.backends()->drainSelected();
  auto listed = remote.listBackends();
  QVERIFY(listed.ok());
  QCOMPARE(listed->backends(0).name(), "sim-small-a");
  QCOMPARE(listed->backends(0).state(), "draining");

  // Policies: the form is filled from the remote config; an edit applies there.
  auto* policies = window.policies();
  policies->reload();
  auto* form = policies->form();
  QCOMPARE(form->indexOfPath("backends[0].name", 1).data().toString(), "sim-small-a");
  QVERIFY(form->setData(form->indexOfPath("backends[0].weight", 1), 3, Qt::EditRole));
  policies->comment()->setText("remote form edit");
  QVERIFY(policies->apply());
  QCOMPARE(remote.getConfig()->config().backends(0).weight(), 3u);

  // Audit: the remote engine's log, with the changes made above.
  window.audit()->reload();
  window.audit()->filter()->setText("remote form edit");
  QCOMPARE(window.audit()->filtered()->rowCount(), 1);

  // Fleet: both engines side by side, then one push to both, canary first.
  auto* fleet = window.fleet();
  // "a" through the Add engine dialog, as an operator would; "b" directly.
  QPushButton* add_button = nullptr;
  for (auto* button : fleet->findChildren<QPushButton*>()) {
    if (button->text() == "&Add engine…") add_button = button;
  }
  QVERIFY(add_button);
  bool filled = false;
  QTimer::singleShot(0, [&] {
    auto* dialog = qobject_cast<QDialog*>(QApplication::activeModalWidget());
    if (!dialog) return;
    const auto edits = dialog->findChildren<QLineEdit*>();  // name, address, token, CA, server name
    if (edits.size() < 3) return;
    edits[0]->setText("a");
    edits[1]->setText(QString::fromStdString(a.controlAddress()));
    edits[2]->setText(QString::fromStdString(a.token()));
    filled = true;
    dialog->accept();
  });
  QTest::mouseClick(add_button, Qt::LeftButton);
  QVERIFY(filled);
  const auto& engines = fleet->engines();
  auto added = std::find_if(engines.begin(), engines.end(), [](const ui::RemoteEngine& e) { return e.name == "a"; });
  QVERIFY(added != engines.end());
  QCOMPARE(added->options.address, a.controlAddress());
  QCOMPARE(added->options.token, a.token());
  {
    ui::RemoteEngine e;
    e.name = "b";
    e.options.address = b.controlAddress();
    e.options.token = b.token();
    fleet->addEngine(e);
  }
  QTRY_VERIFY_WITH_TIMEOUT(fleet->model()->state("a") && fleet->model()->state("b") &&
                               fleet->model()->state("a")->reachable && fleet->model()->state("b")->reachable,
                           15000);
  QCOMPARE(fleet->model()->state("a")->config_version, remote.getConfig()->version());
  // Both listen on kernel-chosen ports ("127.0.0.1:0"): keep that, or they would move.
  const QString yaml = "server: {listen: '127.0.0.1:0'}\n"
                       "backends:\n  - {name: solo, url: 'sim://solo', models: [m], sim: {profile: instant}}\n"
                       "pools:\n  - {model: m, backends: [solo]}\n";
  auto results = fleet->push(yaml, "one backend everywhere", {"a", "b"});
  QCOMPARE(results.size(), size_t{2});
  QVERIFY2(results[0].applied && results[1].applied, qPrintable(results[0].detail + " / " + results[1].detail));
  for (auto* p : {&a, &b}) {
    QVERIFY(waitFor([&] { return postJson(p->port(), "/v1/chat/completions", kChat).header("x-spillway-backend") == "solo"; },
                    10s));
  }

  // The Push button's flow: per-engine diffs first; declining applies nothing.
  const int64_t version_a = remote.getConfig()->version();
  QString asked;
  fleet->setConfirm([&](const QString& q) {
    asked = q;
    return false;
  });
  QString heavier = yaml;
  heavier.replace("profile: instant}", "profile: instant}, weight: 9");
  fleet->pushSelected(heavier, "heavier", {"b", "a"});
  QTRY_VERIFY_WITH_TIMEOUT(!asked.isEmpty(), 15000);
  QVERIFY2(asked.contains("b first") && asked.contains("backends[solo].weight: 1 -> 9"), qPrintable(asked));
  QCOMPARE(remote.getConfig()->version(), version_a);
  // Confirmed: applied to both, the canary (b) first.
  fleet->setConfirm([](const QString&) { return true; });
  QSignalSpy pushed(fleet, &ui::FleetPage::pushed);
  fleet->pushSelected(heavier, "heavier", {"b", "a"});
  QVERIFY(pushed.wait(15000));
  QVERIFY2(fleet->results()->toPlainText().count("applied, now v") == 2, qPrintable(fleet->results()->toPlainText()));
  QCOMPARE(remote.getConfig()->config().backends(0).weight(), 9u);

  // Fleet > Open console: a window of its own over gRPC, closed cleanly.
  // `engines` is the page's own list, which now holds b too.
  auto engine_b = std::find_if(engines.begin(), engines.end(), [](const ui::RemoteEngine& e) { return e.name == "b"; });
  QVERIFY(engine_b != engines.end());
  QVERIFY(window.openRemote(*engine_b));
  ui::MainWindow* opened = nullptr;
  for (QWidget* w : QApplication::topLevelWidgets()) {
    if (w->windowTitle().contains("b (127.0.0.1:")) opened = qobject_cast<ui::MainWindow*>(w);
  }
  QVERIFY(opened);
  QVERIFY(waitFor(
      [&] {
        opened->refresh();
        return opened->overview()->tileText("backends") == "1 / 1";
      },
      10s));
  QPointer<ui::MainWindow> guard(opened);
  opened->close();  // deletes itself, and its client, on close
  QTRY_VERIFY_WITH_TIMEOUT(guard.isNull(), 5000);
}

void ConsoleFleetTest::fleetModelPassesTheModelTester() {
  ui::FleetModel model;
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
  ui::RemoteEngine a, b;
  a.name = "a";
  a.options.address = "127.0.0.1:1";
  b.name = "b";
  b.options.address = "127.0.0.1:2";
  b.options.tls = true;
  model.setEngines({a, b});
  QCOMPARE(model.rowCount(), 2);
  QCOMPARE(model.index(1, ui::FleetModel::kAddress).data().toString(), "127.0.0.1:2 (TLS)");
  QCOMPARE(model.index(0, ui::FleetModel::kStatus).data().toString(), "checking…");
  QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
  ui::RemoteState up;
  up.reachable = true;
  up.detail = "0.1.0, ready";
  up.rps = 12.5;
  up.config_version = 3;
  model.setState("b", up);
  QCOMPARE(changed.count(), 1);
  QCOMPARE(model.index(1, ui::FleetModel::kConfig).data().toString(), "v3");
  QCOMPARE(model.index(1, ui::FleetModel::kRps).data().toString(), "12.5");
  QCOMPARE(model.index(0, ui::FleetModel::kRps).data().toString(), "");  // unknown yet
  model.setEngines({a});
  QCOMPARE(model.rowCount(), 1);
}

QTEST_MAIN(ConsoleFleetTest)
