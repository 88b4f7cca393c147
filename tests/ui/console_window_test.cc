#include "console_window_test.h"

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

void ConsoleWindowTest::themesSwitchAndAreRemembered() {
  ui::applyTheme(ui::Theme::kDark);
  ui::saveTheme(ui::Theme::kDark);
  QVERIFY(ui::paletteIsDark());
  QCoreApplication::processEvents();
  QVERIFY(window_->overview()->chartsAreDark());  // the charts follow the palette
  QCOMPARE(ui::savedTheme(), ui::Theme::kDark);
  ui::applyTheme(ui::Theme::kLight);
  QVERIFY(!ui::paletteIsDark());
  QCoreApplication::processEvents();
  QVERIFY(!window_->overview()->chartsAreDark());
  ui::applyTheme(ui::Theme::kSystem);
  ui::saveTheme(ui::Theme::kSystem);
  QCOMPARE(ui::savedTheme(), ui::Theme::kSystem);
}

void ConsoleWindowTest::windowRemembersItsPage() {
  window_->showPage(2);
  window_->close();
  ui::MainWindow again(*client_, "test");
  QCOMPARE(again.currentPage(), 2);
  again.showPage(0);
  again.close();
}

void ConsoleWindowTest::auditFiltersAndExportsCsv() {
  engine_->recordAudit("alice", "config.apply", "v9", "comma, and \"quotes\"", "ok");
  engine_->recordAudit("bob", "backend.drain", "a", "", "ok");
  auto* audit = window_->audit();
  audit->reload();
  QVERIFY(audit->model()->rowCount() >= 3);  // + the start-up version
  audit->filter()->setText("alice");
  QCOMPARE(audit->filtered()->rowCount(), 1);
  QTemporaryDir dir;
  const QString path = dir.filePath("audit.csv");
  QVERIFY(audit->exportCsv(path));
  QFile f(path);
  QVERIFY(f.open(QIODevice::ReadOnly));
  const QStringList lines = QString::fromUtf8(f.readAll()).split("\r\n", Qt::SkipEmptyParts);
  QCOMPARE(lines.size(), 2);  // header + the one filtered row
  QCOMPARE(lines[0], "When,Who,Action,Target,Outcome,Detail");
  QVERIFY2(lines[1].endsWith(",alice,config.apply,v9,ok,\"comma, and \"\"quotes\"\"\""), qPrintable(lines[1]));
}

QTEST_MAIN(ConsoleWindowTest)
