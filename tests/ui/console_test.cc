// The console against a real embedded engine (offscreen): the backends
// model under QAbstractItemModelTester, draining from the Backends page,
// applying a valid and an invalid config and rolling back from the Policies
// page, live tiles on the Overview, and a UI that stays responsive while
// the engine is under load.
#include "console_test.h"

#include <QtTest>

#include <QAbstractItemModelTester>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QTableWidget>
#include <atomic>
#include <thread>

#include "support/test_config.h"
#include "support/test_http.h"
#include "ui/backends_page.h"
#include "ui/overview_page.h"
#include "ui/policies_page.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

const char* kTwo = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant}
  - name: b
    url: sim://b
    models: [m]
    sim: {profile: instant}
)";

const std::string kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";

}  // namespace

void ConsoleTest::init() {
  auto e = Engine::start(configFromYaml(engineYaml(kTwo)), EngineOptions{"", "test", false});
  QVERIFY(e.ok());
  engine_ = std::move(*e);
  client_ = std::make_unique<control::LocalEngineClient>(*engine_, "console-test");
  window_ = std::make_unique<ui::MainWindow>(*client_, "test");
  window_->backends()->setConfirm([](const QString&) { return true; });
  window_->policies()->setConfirm([](const QString&) { return true; });
  window_->show();
}

void ConsoleTest::cleanup() {
  window_.reset();
  client_.reset();
  engine_.reset();
}

void ConsoleTest::backendsModelPassesTheModelTester() {
  ui::BackendsModel model;
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
  auto snap = client_->snapshot();
  QVERIFY(snap.ok());
  model.update(snap->backends());
  QCOMPARE(model.rowCount(), 2);
  QCOMPARE(model.index(0, ui::BackendsModel::kState).data().toString(), "up");
  QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
  QSignalSpy reset(&model, &QAbstractItemModel::modelReset);
  model.update(snap->backends());  // same backends: one dataChanged for the table
  QCOMPARE(changed.count(), 1);
  QCOMPARE(reset.count(), 0);
  auto fewer = snap->backends();
  fewer.RemoveLast();
  model.update(fewer);  // a different set: a reset
  QCOMPARE(reset.count(), 1);
  QCOMPARE(model.rowCount(), 1);
}

void ConsoleTest::drainFromTheBackendsPage() {
  window_->showPage(1);
  window_->refresh();
  QVERIFY(window_->backends()->select("b"));
  window_->backends()->drainSelected();
  QVERIFY(engine_->backends()[1].draining);
  for (int i = 0; i < 4; ++i) QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"), "a");
  QVERIFY(window_->backends()->select("b"));
  window_->backends()->undrainSelected();
  QVERIFY(!engine_->backends()[1].draining);
  QCOMPARE(engine_->audit({0, "backend.", "console-test", 10}).size(), size_t{2});
}

void ConsoleTest::applyValidConfigFromThePoliciesPage() {
  auto* page = window_->policies();
  const int64_t before = engine_->configVersion();
  QCOMPARE(page->loadedVersion(), before);
  QString text = page->editor()->toPlainText();
  QVERIFY(text.contains("\"weight\": 1"));
  text.replace(text.indexOf("\"weight\": 1"), QString("\"weight\": 1").size(), "\"weight\": 6");
  page->editor()->setPlainText(text);
  page->comment()->setText("heavier a");
  QVERIFY(page->apply());
  QVERIFY(engine_->configVersion() > before);
  QCOMPARE(engine_->config().backends(0).weight(), 6u);
  QCOMPARE(engine_->configHistory()[0].comment, "heavier a");
  QCOMPARE(page->loadedVersion(), engine_->configVersion());  // reloaded after the apply
  QCOMPARE(page->history()->rowCount(), 2);
}

void ConsoleTest::invalidConfigShowsLocatedErrorsAndChangesNothing() {
  auto* page = window_->policies();
  const int64_t before = engine_->configVersion();
  QString text = page->editor()->toPlainText();
  text.replace("sim://a", "htp://a");
  page->editor()->setPlainText(text);
  page->validateNow();
  QStringList problems;
  for (int i = 0; i < page->errors()->count(); ++i) problems << page->errors()->item(i)->text();
  QVERIFY2(!problems.filter(QRegularExpression("^editor:\\d+:\\d+: backends\\[0\\]\\.url: unsupported scheme")).isEmpty(),
           qPrintable(problems.join('\n')));
  const int count = page->errors()->count();
  QVERIFY(!page->apply());
  QCOMPARE(engine_->configVersion(), before);
  QVERIFY(count >= 1);
  // Validation also runs on its own shortly after typing stops: fixing the
  // text clears the problems without pressing anything.
  text.replace("htp://a", "sim://a");
  page->editor()->setPlainText(text);
  QTRY_VERIFY_WITH_TIMEOUT(page->errors()->count() == 0, 5000);
}

void ConsoleTest::rollbackFromTheHistory() {
  auto* page = window_->policies();
  const int64_t first = engine_->configVersion();
  QString text = page->editor()->toPlainText();
  text.replace(text.indexOf("\"weight\": 1"), QString("\"weight\": 1").size(), "\"weight\": 2");
  page->editor()->setPlainText(text);
  QVERIFY(page->apply());
  QCOMPARE(page->history()->rowCount(), 2);
  page->history()->selectRow(1);  // the oldest: the first version
  QVERIFY(page->rollbackSelected());
  QCOMPARE(engine_->config().backends(0).weight(), 1u);
  QVERIFY(engine_->configHistory()[0].comment.rfind("rollback to v", 0) == 0);
  QVERIFY(engine_->configVersion() > first);
  QCOMPARE(engine_->audit({0, "config.rollback", "console-test", 10}).size(), size_t{1});
}

void ConsoleTest::overviewShowsLiveTraffic() {
  window_->refresh();
  for (int i = 0; i < 20; ++i) QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", kChat).status, 200);
  window_->refresh();
  auto* o = window_->overview();
  QVERIFY(o->tileText("rps").toDouble() > 0);
  QCOMPARE(o->tileText("success"), "100.0 %");
  QCOMPARE(o->tileText("backends"), "2 / 2");
  QVERIFY(o->pointCount() >= 2);
}

void ConsoleTest::staysResponsiveUnderLoad() {
  // Load on the engine from other threads; the UI thread keeps refreshing
  // and its event loop keeps turning (bounded generously: noisy machines).
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      while (!stop) postJson(engine_->port(), "/v1/chat/completions", kChat);
    });
  }
  int64_t worst_ms = 0;
  QElapsedTimer total;
  total.start();
  while (total.elapsed() < 2000) {
    QElapsedTimer lap;
    lap.start();
    window_->refresh();
    QCoreApplication::processEvents();
    worst_ms = std::max<int64_t>(worst_ms, lap.elapsed());
  }
  stop = true;
  for (auto& t : load) t.join();
  QVERIFY2(worst_ms < 500, qPrintable(QString("a UI turn took %1 ms").arg(worst_ms)));
}

QTEST_MAIN(ConsoleTest)
