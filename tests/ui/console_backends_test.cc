#include "console_backends_test.h"

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

using namespace spillway;
using namespace spillway::testing;

void ConsoleBackendsTest::backendsModelPassesTheModelTester() {
  ui::BackendsModel model;
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
  auto snap = client_->snapshot();
  QVERIFY(snap.ok());
  model.update(snap->backends(), 1'000);
  QCOMPARE(model.rowCount(), 2);
  QCOMPARE(model.index(0, ui::BackendsModel::kState).data().toString(), "up");
  QCOMPARE(model.index(0, ui::BackendsModel::kPools).data().toString(), "m");
  QCOMPARE(model.index(0, ui::BackendsModel::kWeight).data().toString(), "1 / 1");
  QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
  QSignalSpy reset(&model, &QAbstractItemModel::modelReset);
  // Two seconds later a has finished 10 more requests, 5 of them failed.
  auto later = snap->backends();
  later[0].set_requests_total(later[0].requests_total() + 10);
  later[0].set_failures_total(later[0].failures_total() + 5);
  later[0].set_last_error("answered HTTP 500");
  later[0].set_last_error_ms(1'500);
  model.update(later, 3'000);  // same backends: one dataChanged for the table
  QCOMPARE(changed.count(), 1);
  QCOMPARE(reset.count(), 0);
  QCOMPARE(model.index(0, ui::BackendsModel::kRate).data(Qt::UserRole).toDouble(), 5.0);
  QCOMPARE(model.index(0, ui::BackendsModel::kErrorRate).data().toString(), "50.0 %");
  QCOMPARE(model.index(1, ui::BackendsModel::kRate).data(Qt::UserRole).toDouble(), 0.0);
  QVERIFY(model.index(0, ui::BackendsModel::kLastError).data().toString().endsWith("answered HTTP 500"));
  QCOMPARE(model.index(0, ui::BackendsModel::kTrend).data(ui::BackendsModel::kTrendRole).toList(),
           QVariantList{5.0});
  auto fewer = later;
  fewer.RemoveLast();
  model.update(fewer, 4'000);  // a different set: a reset
  QCOMPARE(reset.count(), 1);
  QCOMPARE(model.rowCount(), 1);
}

void ConsoleBackendsTest::drainFromTheBackendsPage() {
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

void ConsoleBackendsTest::ejectAndReweighFromTheBackendsPage() {
  auto* page = window_->backends();
  QStringList asked;
  page->setAskNumber([&](const QString& label, int value, int min, int max) -> std::optional<int> {
    asked << QString("%1 [%2, %3..%4]").arg(label).arg(value).arg(min).arg(max);
    return label.startsWith("Eject") ? 120 : 4;
  });
  window_->showPage(1);
  window_->refresh();
  QVERIFY(page->select("a"));
  page->ejectSelected();
  QVERIFY(engine_->backends()[0].ejected);
  QCOMPARE(asked.value(0), "Eject a for how many seconds? [30, 1..86400]");
  for (int i = 0; i < 3; ++i) QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"), "b");
  window_->refresh();
  QVERIFY(page->select("a"));
  QCOMPARE(page->model()->index(0, ui::BackendsModel::kState).data().toString(), "ejected");
  page->readmitSelected();
  QCOMPARE(page->model()->index(0, ui::BackendsModel::kState).data().toString(), "cooling down");
  QVERIFY(page->select("b"));
  page->changeWeightOfSelected();
  QCOMPARE(asked.value(1), "New weight for b (0 takes it out of rotation): [1, 0..10000]");
  QCOMPARE(engine_->backends()[1].weight_override, 4);
  QCOMPARE(page->model()->index(1, ui::BackendsModel::kWeight).data().toString(), "4 / 4*");
  QVERIFY(page->select("b"));
  page->resetWeightOfSelected();
  QCOMPARE(engine_->backends()[1].weight_override, -1);
  // A refused confirmation changes nothing.
  page->setConfirm([](const QString&) { return false; });
  QVERIFY(page->select("a"));
  page->ejectSelected();
  QVERIFY(!engine_->backends()[0].ejected);
  std::vector<std::string> actions;
  for (const auto& e : engine_->audit({0, "backend.", "console-test", 10})) actions.push_back(e.action);
  std::sort(actions.begin(), actions.end());
  QCOMPARE(actions, (std::vector<std::string>{"backend.eject", "backend.readmit", "backend.weight", "backend.weight"}));
}

void ConsoleBackendsTest::switchPolicyAndSeeBackOffsOnTheBackendsPage() {
  auto* panel = window_->backends()->balancing();
  QString asked;
  panel->setConfirm([&](const QString& question) {
    asked = question;
    return true;
  });
  window_->showPage(1);
  window_->refresh();
  auto* pools = panel->poolsTable();
  QCOMPARE(pools->rowCount(), 1);
  QCOMPARE(pools->item(0, 0)->text(), "m");
  auto* combo = qobject_cast<QComboBox*>(pools->cellWidget(0, 1));
  QVERIFY(combo);
  QCOMPARE(combo->currentText(), "least_outstanding");
  // Pick a policy in the combo, as an operator would.
  QSignalSpy messages(panel, &ui::BalancingPanel::message);
  combo->setCurrentText("round_robin");
  emit combo->activated(combo->currentIndex());
  QCOMPARE(engine_->pools().at(0).policy, std::string("round_robin"));
  // The operator saw the change as a diff before it was applied.
  QVERIFY2(asked.contains("pools[m].balancing.policy: balancing_policy_unspecified -> round_robin"), qPrintable(asked));
  QVERIFY2(messages.size() == 1 && messages[0][0].toString().startsWith("Pool m now balances with round_robin"),
           messages.isEmpty() ? "no message" : qPrintable(messages[0][0].toString()));
  bool audited = false;
  for (const auto& e : engine_->audit({0, "config.apply", "console-test", 10})) audited |= e.detail == "balance m round_robin";
  QVERIFY(audited);
  // A refused confirmation puts the combo back and changes nothing.
  panel->setConfirm([](const QString&) { return false; });
  combo->setCurrentText("prefix_affinity");
  emit combo->activated(combo->currentIndex());
  QCOMPARE(combo->currentText(), "round_robin");
  QCOMPARE(engine_->pools().at(0).policy, std::string("round_robin"));
  // Back-offs are listed with their reason: b answers 429 with Retry-After.
  const std::string busy_b = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant}
  - name: b
    url: sim://b
    models: [m]
    sim: {profile: instant, failures: {rate: 1, kind: http_429, retry_after_seconds: 60}}
)";
  QVERIFY(engine_->applyConfig(configFromYaml(engineYaml(busy_b)), {.actor = "console-test"}).ok());
  for (int i = 0; i < 4; ++i) QCOMPARE(postJson(engine_->port(), "/v1/chat/completions", kChat).status, 200);
  window_->refresh();
  auto* events = panel->eventsTable();
  QCOMPARE(events->rowCount(), 1);
  QCOMPARE(events->item(0, 1)->text(), "b");
  QCOMPARE(events->item(0, 2)->text(), "backed off");
  QVERIFY(events->item(0, 4)->text().contains("Retry-After: 60"));
  QVERIFY(window_->backends()->select("b"));
  QCOMPARE(window_->backends()->model()->index(1, ui::BackendsModel::kState).data().toString(), "backing off");
  // The Overview shows retries and backends out of rotation as tiles.
  QCOMPARE(window_->overview()->tileText("figure:backends_out"), "1");
}

QTEST_MAIN(ConsoleBackendsTest)
