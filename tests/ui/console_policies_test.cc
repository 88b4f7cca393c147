#include "console_policies_test.h"

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

void ConsolePoliciesTest::applyValidConfigFromThePoliciesPage() {
  auto* page = window_->policies();
  const int64_t before = engine_->configVersion();
  QCOMPARE(page->loadedVersion(), before);
  QVERIFY(page->showView(1));  // YAML
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

void ConsolePoliciesTest::configFormModelPassesTheModelTester() {
  ui::ConfigFormModel model;
  QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
  model.setConfig(engine_->config());
  // One row per field of the schema, in declaration order.
  QCOMPARE(model.rowCount(), v1::Config::descriptor()->field_count());
  QCOMPARE(model.index(0, 0).data().toString(), QString::fromStdString(v1::Config::descriptor()->field(0)->name()));
  const QModelIndex backends = model.indexOfPath("backends");
  QVERIFY(model.isList(backends));
  QCOMPARE(model.rowCount(backends), 2);
  QCOMPARE(backends.siblingAtColumn(1).data().toString(), "2 items");
  QCOMPARE(model.index(1, 0, backends).data().toString(), "b");
  // Adding and removing elements keeps paths and labels right.
  const QModelIndex added = model.addElement(backends);
  QCOMPARE(added.data(ui::ConfigFormModel::kPathRole).toString(), "backends[2]");
  QCOMPARE(added.data().toString(), "[2]");  // no name yet
  QVERIFY(model.setData(model.indexOfPath("backends[2].name", 1), "c", Qt::EditRole));
  QCOMPARE(model.index(2, 0, backends).data().toString(), "c");
  QVERIFY(model.removeElement(model.index(0, 0, backends)));
  QCOMPARE(model.config().backends_size(), 2);
  QCOMPARE(model.index(1, 0, backends).data().toString(), "c");
  QCOMPARE(model.index(1, 0, backends).data(ui::ConfigFormModel::kPathRole).toString(), "backends[1]");
  QCOMPARE(model.indexOfPath("backends[1].name", 1).data().toString(), "c");
}

void ConsolePoliciesTest::formEditsValidateAndApply() {
  auto* page = window_->policies();
  auto* form = page->form();
  QCOMPARE(page->currentView(), 0);  // the form is in front
  const int64_t before = engine_->configVersion();
  // Help comes from the comments in config.proto.
  QVERIFY2(form->indexOfPath("backends[0].weight").data(ui::ConfigFormModel::kHelpRole).toString().contains(
               "Relative weight for balancing"),
           qPrintable(form->indexOfPath("backends[0].weight").data(ui::ConfigFormModel::kHelpRole).toString()));
  // Bounds come from the field's (spillway.v1.range): in the help and in the editor.
  QVERIFY(form->indexOfPath("backends[0].weight").data(ui::ConfigFormModel::kHelpRole).toString().endsWith(
      "At most 10000."));
  const QVariantMap bounds = form->indexOfPath("backends[0].weight", 1).data(ui::ConfigFormModel::kBoundsRole).toMap();
  QCOMPARE(bounds.value("max").toDouble(), 10000.0);
  QVERIFY(bounds.value("unsigned").toBool());
  {
    ui::ConfigFormDelegate delegate;
    QWidget parent;
    std::unique_ptr<QWidget> editor(
        delegate.createEditor(&parent, QStyleOptionViewItem(), form->indexOfPath("backends[0].weight", 1)));
    auto* spin = qobject_cast<QSpinBox*>(editor.get());
    QVERIFY(spin);
    QCOMPARE(spin->minimum(), 0);
    QCOMPARE(spin->maximum(), 10000);
  }
  // Typed editing: bad values are refused and change nothing.
  const QModelIndex weight = form->indexOfPath("backends[0].weight", 1);
  QVERIFY(!form->setData(weight, "-3", Qt::EditRole));
  QVERIFY(!form->setData(weight, "heavy", Qt::EditRole));
  QVERIFY(form->setData(weight, 5, Qt::EditRole));
  QCOMPARE(form->config().backends(0).weight(), 5u);
  const QModelIndex kind = form->indexOfPath("backends[0].sim.failures.kind", 1);
  QVERIFY(kind.data(ui::ConfigFormModel::kEnumNamesRole).toStringList().contains("HTTP_503"));
  QVERIFY(!form->setData(kind, "TEAPOT", Qt::EditRole));
  QVERIFY(form->setData(kind, "HTTP_503", Qt::EditRole));
  QCOMPARE(form->config().backends(0).sim().failures().kind(), v1::HTTP_503);
  const QModelIndex skip = form->indexOfPath("backends[1].tls_insecure_skip_verify", 1);
  QVERIFY(skip.flags() & Qt::ItemIsUserCheckable);
  const QModelIndex models = form->indexOfPath("backends[1].models", 1);
  QVERIFY(form->setData(models, "m, extra", Qt::EditRole));
  QCOMPARE(form->config().backends(1).models_size(), 2);
  QVERIFY(form->setData(models, "m", Qt::EditRole));

  // An invalid value: the engine's error lands on its row and apply refuses.
  QVERIFY(form->setData(form->indexOfPath("backends[1].url", 1), "htp://b", Qt::EditRole));
  page->validateNow();
  QVERIFY2(form->indexOfPath("backends[1].url").data(ui::ConfigFormModel::kErrorRole).toString().contains(
               "unsupported scheme"),
           qPrintable(page->errors()->count() ? page->errors()->item(0)->text() : "no errors"));
  QVERIFY(form->indexOfPath("backends[1]").data(Qt::ForegroundRole).isValid());  // the branch shows it too
  QVERIFY(!form->indexOfPath("backends[0]").data(Qt::ForegroundRole).isValid());
  QVERIFY(!page->apply());
  QCOMPARE(engine_->configVersion(), before);
  QVERIFY(form->setData(form->indexOfPath("backends[1].url", 1), "sim://b", Qt::EditRole));

  // The YAML view carries the form's edits, and back.
  QVERIFY(page->showView(1));
  QVERIFY(page->editor()->toPlainText().contains("\"weight\": 5"));
  QString text = page->editor()->toPlainText();
  text.replace("\"weight\": 5", "\"weight\": 7");
  page->editor()->setPlainText(text);
  QVERIFY(page->showView(0));
  QCOMPARE(form->indexOfPath("backends[0].weight", 1).data().toString(), "7");
  // Text with errors cannot become a form.
  QVERIFY(page->showView(1));
  page->editor()->setPlainText(text + "\n]]");
  QVERIFY(!page->showView(0));
  QCOMPARE(page->currentView(), 1);
  page->editor()->setPlainText(text);
  QVERIFY(page->showView(0));

  page->comment()->setText("from the form");
  QVERIFY(page->apply());
  QCOMPARE(engine_->config().backends(0).weight(), 7u);
  QCOMPARE(engine_->config().backends(0).sim().failures().kind(), v1::HTTP_503);
  QCOMPARE(engine_->configHistory()[0].comment, "from the form");
}

void ConsolePoliciesTest::invalidConfigShowsLocatedErrorsAndChangesNothing() {
  auto* page = window_->policies();
  const int64_t before = engine_->configVersion();
  QVERIFY(page->showView(1));
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

void ConsolePoliciesTest::rollbackFromTheHistory() {
  auto* page = window_->policies();
  const int64_t first = engine_->configVersion();
  QVERIFY(page->showView(1));
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

QTEST_MAIN(ConsolePoliciesTest)
