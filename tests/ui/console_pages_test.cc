#include "console_pages_test.h"

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
#include "ui/usage_page.h"

using namespace spillway;
using namespace spillway::testing;

void ConsolePagesTest::admissionPageShowsQueuesAndPinsDegradation() {
  auto* page = window_->admission();
  window_->showPage(2);
  QCOMPARE(window_->pageName(2), "Admission");
  auto snap = client_->snapshot();
  QVERIFY(snap.ok());
  page->showSnapshot(*snap);
  QCOMPARE(page->pools()->rowCount(), 1);
  QCOMPARE(page->pools()->item(0, 0)->text(), "m");
  QCOMPARE(page->pools()->item(0, 6)->text(), "0 (automatic)");
  QCOMPARE(page->limits()->rowCount(), 2);
  QCOMPARE(page->limits()->item(0, 3)->text(), "learned");  // no max_concurrency: admission learns it
  QVERIFY(page->bannerText().isEmpty());
  QCOMPARE(page->depthPoints("critical"), 1);
  // Overview tiles for the admission figures.
  window_->overview()->showSnapshot(*snap);
  QCOMPARE(window_->overview()->tileText("figure:queued"), "0 req");

  // Pin level 3: refused when not confirmed, applied and audited when confirmed.
  page->pools()->selectRow(0);
  page->levelBox()->setCurrentIndex(page->levelBox()->findData(3));
  page->setConfirm([](const QString&) { return false; });
  page->applyLevel();
  QCOMPARE(engine_->admission().pools[0].pinned, -1);
  QString asked;
  page->setConfirm([&](const QString& q) {
    asked = q;
    return true;
  });
  page->applyLevel();
  QCOMPARE(asked, "Pin m at degradation level 3?");
  QCOMPARE(engine_->admission().pools[0].pinned, 3);
  QCOMPARE(page->pools()->item(0, 6)->text(), "3 (pinned)");
  // Sheddable requests now get the emergency answer.
  auto r = httpRequest(engine_->port(), "POST", "/v1/chat/completions",
                       R"({"model":"m","messages":[{"role":"user","content":"hi"}]})",
                       {{"Content-Type", "application/json"}, {"x-spillway-priority", "sheddable"}});
  QCOMPARE(r.status, 429);
  QCOMPARE(r.header("x-spillway-degraded"), "3");
  // The caller shows among the tenants, with the request turned away.
  auto after = client_->snapshot();
  QVERIFY(after.ok());
  page->showSnapshot(*after);
  QCOMPARE(page->tenants()->rowCount(), 1);
  QCOMPARE(page->tenants()->item(0, 1)->text(), "127.0.0.1");
  QCOMPARE(page->tenants()->item(0, 3)->text(), "1");
  store::AuditFilter f;
  f.action_prefix = "degradation.";
  auto audit = engine_->audit(f);
  QVERIFY(!audit.empty());
  QCOMPARE(audit.front().actor, "console-test");
  // Release: automatic again.
  page->levelBox()->setCurrentIndex(page->levelBox()->findData(-1));
  page->applyLevel();
  QCOMPARE(engine_->admission().pools[0].pinned, -1);
}

void ConsolePagesTest::cachePageShowsTiersLooksUpAndPurges() {
  auto* page = window_->cache();
  window_->showPage(3);
  QCOMPARE(window_->pageName(3), "Cache");
  const std::string body = R"({"model":"m","temperature":0,"max_tokens":4,"messages":[{"role":"user","content":"cache page"}]})";
  auto before = client_->snapshot();  // the interval for the charts starts here
  QVERIFY(before.ok());
  page->showSnapshot(*before);
  QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", body).header("x-spillway-cache"), "miss");
  QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", body).header("x-spillway-cache"), "hit");
  auto snap = client_->snapshot();
  QVERIFY(snap.ok());
  page->showSnapshot(*snap);
  QCOMPARE(page->tiers()->rowCount(), 3);
  QCOMPARE(page->tiers()->item(0, 0)->text(), "memory");
  QCOMPARE(page->tiers()->item(0, 2)->text(), "1");
  QCOMPARE(page->tiers()->item(1, 1)->text(), "off");  // no data directory: no disk tier
  QVERIFY2(page->summaryText().contains("1 hits, 1 misses"), qPrintable(page->summaryText()));
  QCOMPARE(page->hitRatioPoints(), 1);
  QVERIFY(page->bannerText().isEmpty());
  window_->overview()->showSnapshot(*snap);
  QVERIFY(!window_->overview()->tileText("figure:cache_hit_ratio").isEmpty());

  // Look up: entries are per tenant, and open access makes the address the tenant.
  page->lookupBody()->setPlainText(QString::fromStdString(body));
  page->tenantEdit()->setText("127.0.0.1");
  page->lookup();
  QVERIFY2(page->lookupResult().contains("Cached in memory (json"), qPrintable(page->lookupResult()));
  page->lookupBody()->setPlainText("{not json");
  page->lookup();
  QVERIFY(page->lookupResult().startsWith("Cannot look it up"));

  // Purge model m: refused when not confirmed, done and audited when confirmed.
  page->modelBox()->setCurrentIndex(page->modelBox()->findData("m"));
  page->tenantEdit()->clear();
  page->setConfirm([](const QString&) { return false; });
  page->purge();
  QCOMPARE(engine_->cache().tiers[0].entries, uint64_t{1});
  QString asked;
  page->setConfirm([&](const QString& q) {
    asked = q;
    return true;
  });
  page->purge();
  QCOMPARE(asked, "Drop every cached answer of model m from every tier?");
  QCOMPARE(engine_->cache().tiers[0].entries, uint64_t{0});
  QCOMPARE(page->tiers()->item(0, 2)->text(), "0");
  store::AuditFilter f;
  f.action_prefix = "cache.";
  auto audit = engine_->audit(f);
  QVERIFY(!audit.empty());
  QCOMPARE(audit.front().actor, "console-test");
  QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", body).header("x-spillway-cache"), "miss");
  page->flush();
  QVERIFY(asked.startsWith("Drop EVERY cached answer"));
  QCOMPARE(engine_->cache().tiers[0].entries, uint64_t{0});
}

void ConsolePagesTest::liveSeriesKeepsItsWindow() {
  // The pages' rolling lines: one replace() per point, the window kept.
  ui::LiveSeries line("depth");
  QSignalSpy replaced(&line, &QXYSeries::pointsReplaced);
  QSignalSpy added(&line, &QXYSeries::pointAdded);
  const int n = ui::kChartWindowSeconds * 2 + 7;
  for (int i = 0; i < n; ++i) line.push(i, i % 50);
  QCOMPARE(replaced.count(), n);  // one signal (one repaint) per point
  QCOMPARE(added.count(), 0);
  QCOMPARE(line.count(), ui::kChartWindowSeconds + 1);
  QCOMPARE(line.at(0).x(), double(n - ui::kChartWindowSeconds - 1));
  QCOMPARE(line.at(line.count() - 1).x(), double(n - 1));
  QCOMPARE(line.top(), 49.0);
}

void ConsolePagesTest::gpuPageDrawsInstancesAndPlansLayouts() {
  QCOMPARE(window_->pageName(4), "GPUs");
  // An engine of its own with a declared A100 and two backends bound to its
  // MIG instances (no worker processes needed for the view).
  auto started = Engine::start(configFromYaml(R"(
server: {listen: "127.0.0.1:0"}
control: {listen: none}
backends:
  - {name: big, url: "sim://big", models: [m], gpu: MIG-declared-0-0, sim: {profile: instant}}
  - {name: small, url: "sim://small", models: [m], gpu: MIG-declared-0-1, sim: {profile: instant}}
gpu:
  inventory: declared
  gpus: [{model: A100-80GB, mig: [3g.40gb, 1g.10gb]}]
  placement: {critical: [3g.40gb], sheddable: [1g.10gb]}
)"),
                                 EngineOptions{"", "test", false});
  QVERIFY2(started.ok(), std::string(started.status().message()).c_str());
  auto engine = std::move(*started);
  control::LocalEngineClient client(*engine, "console-test");
  ui::GpuPage page(client);
  page.resize(1000, 600);
  auto snap = client.snapshot();
  QVERIFY(snap.ok());
  page.showSnapshot(*snap);
  QVERIFY2(page.summaryText().contains("1 GPU(s)</b>, 2 MIG instance(s)"), qPrintable(page.summaryText()));
  QVERIFY(page.summaryText().contains("inventory: declared"));
  const auto& inst = snap->gpu().gpus(0).instances(0);
  QCOMPARE(inst.profile(), "3g.40gb");
  QCOMPARE(inst.backends(0), "big");
  QCOMPARE(inst.classes(0), "critical");
  QCOMPARE(snap->gpu().gpus(0).instances(1).start(), 4u);
  bool figure = false;
  for (const auto& f : snap->figures()) figure = figure || f.key() == "gpu_utilisation";
  QVERIFY(figure);  // feeds the Overview's GPU alert
  // The picture paints the GPU (a blank view would be all one colour).
  page.view()->resize(page.view()->sizeHint());
  QImage img(page.view()->size(), QImage::Format_ARGB32);
  img.fill(Qt::white);
  page.view()->render(&img);
  QSet<QRgb> colours;
  for (int x = 0; x < img.width(); x += 7) colours.insert(img.pixel(x, 60));
  QVERIFY2(colours.size() > 3, "the GPU view drew nothing");

  // The planner: the article's case on an A100-80GB; Copy puts the commands on the clipboard.
  auto* planner = page.planner();
  QCOMPARE(planner->modelBox()->currentData().toString(), "A100-80GB");
  planner->plan();
  QVERIFY2(planner->resultText().contains("nvidia-smi mig -i 0 -cgi 19,19,19,19,19,19,19 -C"),
           qPrintable(planner->resultText()));
  QCOMPARE(planner->commands(), "nvidia-smi mig -i 0 -cgi 19,19,19,19,19,19,19 -C");
  planner->copyCommands();
  QCOMPARE(QApplication::clipboard()->text(), planner->commands());
  // A replica no instance can hold: the error, and nothing to copy.
  static_cast<QDoubleSpinBox*>(planner->demands()->cellWidget(0, 2))->setValue(500);
  planner->plan();
  QVERIFY2(planner->resultText().startsWith("Cannot plan: demand \"chat\" needs 500 GB"), qPrintable(planner->resultText()));
  QVERIFY(planner->commands().isEmpty());
}

void ConsolePagesTest::trafficDrillRunsAndStops() {
  auto* drill = window_->drill();
  drill->target()->setText(QString::fromStdString(engine_->url()));
  drill->model()->setText("m");
  drill->rate()->setValue(50);
  drill->seconds()->setValue(1);
  QSignalSpy finished(drill, &ui::DrillPage::finished);
  drill->start();
  QVERIFY(drill->running());
  QVERIFY(finished.wait(20000));
  QVERIFY(!drill->running());
  QVERIFY2(drill->report()->toPlainText().contains("p99.9"), qPrintable(drill->report()->toPlainText()));
  QVERIFY(engine_->totals().requests > 20);
  // A long drill stops early on request.
  drill->seconds()->setValue(600);
  drill->start();
  QTRY_VERIFY_WITH_TIMEOUT(engine_->totals().requests > 60, 10000);
  drill->stop();
  QVERIFY(finished.wait(20000));
  QCOMPARE(finished.count(), 2);
}

void ConsolePagesTest::trafficDrillRunsAScenarioFile() {
  auto* drill = window_->drill();
  drill->target()->setText(QString::fromStdString(engine_->url()));
  drill->shape()->setCurrentText("scenario file");
  QTemporaryDir dir;
  // A broken file: the error names the file and the field, and nothing runs.
  const QString bad = dir.filePath("bad.yaml");
  QFile b(bad);
  QVERIFY(b.open(QIODevice::WriteOnly));
  b.write("classes:\n  - {model: m, wieght: 2}\nphases:\n  - {duration_ms: 500, rate: 20}\n");
  b.close();
  drill->scenarioFile()->setText(bad);
  drill->start();
  QVERIFY(!drill->running());
  QVERIFY2(drill->report()->toPlainText().contains("bad.yaml:2") &&
               drill->report()->toPlainText().contains("wieght"),
           qPrintable(drill->report()->toPlainText()));
  // A good one runs against the page's endpoint (the file names another).
  const QString good = dir.filePath("good.yaml");
  QFile g(good);
  QVERIFY(g.open(QIODevice::WriteOnly));
  g.write("target: http://127.0.0.1:1\nclasses:\n  - {name: chat-m, model: m, max_tokens: 8}\n"
          "phases:\n  - {name: only, duration_ms: 800, rate: 25}\n");
  g.close();
  drill->scenarioFile()->setText(good);
  QSignalSpy finished(drill, &ui::DrillPage::finished);
  const uint64_t before = engine_->totals().requests;
  drill->start();
  QVERIFY(drill->running());
  QVERIFY(finished.wait(20000));
  QVERIFY2(drill->report()->toPlainText().contains("chat-m"), qPrintable(drill->report()->toPlainText()));
  QVERIFY(engine_->totals().requests > before + 5);
}

QTEST_MAIN(ConsolePagesTest)

void ConsolePagesTest::usagePageRanksTenantsAndListsTraceIds() {
  // An engine of its own: the fixture's records no history.
  auto started = Engine::start(
      configFromYaml(engineYaml(kTwo, "limits:\n  keys:\n    - {name: team-a, sha256: " +
                                          control::TokenAuthority::sha256Hex("sk-a") +
                                          ", limits: {requests_per_minute: 3}}\n")),
      EngineOptions{"", "test", true});
  QVERIFY(started.ok());
  auto& engine = **started;
  control::LocalEngineClient client(engine, "console");
  ui::UsagePage page(client);
  std::vector<std::string> shed_traces;
  for (int i = 0; i < 5; ++i) {  // three answered, then two over the key's limit
    auto r = httpRequest(engine.port(), "POST", "/v1/chat/completions", kChat,
                         {{"Content-Type", "application/json"}, {"Authorization", "Bearer sk-a"}});
    if (r.status == 429) shed_traces.push_back(r.header("x-spillway-trace-id"));
  }
  QCOMPARE(shed_traces.size(), size_t{2});
  QCOMPARE(httpRequest(engine.port(), "POST", "/v1/chat/completions", kChat, {{"Content-Type", "application/json"}}).status,
           200);
  // The history is written once a second.
  QVERIFY(waitFor([&] {
    page.reload();
    return page.tenants()->rowCount() == 2 && page.tenants()->item(0, 1)->text() == "5" &&
           page.tenants()->item(1, 1)->text() == "1";
  }));
  auto cell = [&](int row, int col) { return page.tenants()->item(row, col)->text(); };
  QCOMPARE(cell(0, 0), "team-a");
  QCOMPARE(cell(0, 2), "83.3 %");   // of the fleet's six requests
  QCOMPARE(cell(0, 6), "2");        // shed
  QCOMPARE(cell(0, 7), "100.0 %");  // of the sheds
  QCOMPARE(cell(1, 0), "other");
  QCOMPARE(cell(1, 6), "0");
  QVERIFY(cell(0, 8).startsWith("m (5)"));
  QVERIFY(page.summaryText().contains("6 requests from 2 tenants"));
  // The chart: the first tenant on top (the last category).
  QCOMPARE(page.chartTenants(), QStringList({"other", "team-a"}));
  QCOMPARE(page.shedShares(), QList<double>({0.0, 100.0}));
  QCOMPARE(page.requestShares().size(), 2);
  QVERIFY(page.requestShares()[1] > 83 && page.requestShares()[1] < 84);
  // The events: the two sheds, newest first, with the trace ids their clients got.
  QCOMPARE(page.events()->rowCount(), 2);
  QCOMPARE(page.events()->item(0, 7)->text().toStdString(), shed_traces[1]);
  QCOMPARE(page.events()->item(1, 7)->text().toStdString(), shed_traces[0]);
  QCOMPARE(page.events()->item(0, 4)->text(), "429");
  QCOMPARE(page.events()->item(0, 5)->text(), "rate_limited");
  // Another range asks again.
  page.range()->setCurrentIndex(1);
  QCOMPARE(page.tenants()->rowCount(), 2);
}
