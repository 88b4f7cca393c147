#include "ui/main_window.h"

#include <QAction>
#include <QCloseEvent>
#include <QHBoxLayout>
#include <QKeySequence>
#include <QListWidget>
#include <QSettings>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTimer>
#include <QToolBar>

#include "ui/audit_page.h"
#include "ui/backends_page.h"
#include "ui/drill_page.h"
#include "ui/fleet_page.h"
#include "ui/overview_page.h"
#include "ui/policies_page.h"

namespace spillway::ui {

MainWindow::MainWindow(control::EngineClient& client, const QString& engine_label, QWidget* parent)
    : QMainWindow(parent), client_(client), nav_(new QListWidget(this)), stack_(new QStackedWidget(this)),
      overview_(new OverviewPage(this)), backends_(new BackendsPage(client, this)),
      policies_(new PoliciesPage(client, this)), fleet_(new FleetPage(this)),
      drill_(new DrillPage(engine_label, this)), audit_(new AuditPage(client, this)), timer_(new QTimer(this)), toolbar_(addToolBar(tr("Main"))) {
  setWindowTitle(tr("Spillway console — %1").arg(engine_label));
  toolbar_->setObjectName("main-toolbar");
  const QList<QPair<QString, QWidget*>> pages = {
      {tr("Overview"), overview_}, {tr("Backends"), backends_}, {tr("Policies"), policies_}, {tr("Fleet"), fleet_},
      {tr("Traffic drill"), drill_}, {tr("Audit"), audit_}};
  for (int i = 0; i < pages.size(); ++i) {
    nav_->addItem(pages[i].first);
    stack_->addWidget(pages[i].second);
    auto* go = new QAction(pages[i].first, this);
    go->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_1 + i)));
    connect(go, &QAction::triggered, this, [this, i] { showPage(i); });
    addAction(go);
  }
  nav_->setFixedWidth(150);
  overview_->setHistorySource(&client_);
  connect(nav_, &QListWidget::currentRowChanged, stack_, &QStackedWidget::setCurrentIndex);
  nav_->setCurrentRow(0);

  auto* central = new QWidget(this);
  auto* h = new QHBoxLayout(central);
  h->addWidget(nav_);
  h->addWidget(stack_, 1);
  setCentralWidget(central);

  for (auto* page : {static_cast<QObject*>(backends_), static_cast<QObject*>(policies_), static_cast<QObject*>(fleet_),
                     static_cast<QObject*>(drill_), static_cast<QObject*>(audit_)}) {
    connect(page, SIGNAL(message(QString)), statusBar(), SLOT(showMessage(QString)));
  }
  statusBar()->showMessage(tr("Engine: %1").arg(engine_label));

  timer_->setInterval(1000);
  connect(timer_, &QTimer::timeout, this, &MainWindow::refresh);
  timer_->start();

  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  if (!settings.contains("window/geometry")) resize(1200, 800);
}

void MainWindow::refresh() {
  auto s = client_.snapshot();
  if (!s.ok()) {
    statusBar()->showMessage(tr("Engine unavailable: %1").arg(QString::fromStdString(std::string(s.status().message()))));
    return;
  }
  if (s->ts_ms() == last_snapshot_ms_) return;  // a remote engine's feed has nothing newer yet
  last_snapshot_ms_ = s->ts_ms();
  overview_->showSnapshot(*s);
  backends_->showSnapshot(*s);
}

void MainWindow::showPage(int index) { nav_->setCurrentRow(index); }
int MainWindow::pageCount() const { return stack_->count(); }
QString MainWindow::pageName(int index) const { return nav_->item(index)->text(); }

QAction* MainWindow::addToggle(const QString& text, const QString& tip) {
  auto* a = toolbar_->addAction(text);
  a->setCheckable(true);
  a->setToolTip(tip);
  return a;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings().setValue("window/geometry", saveGeometry());
  event->accept();
}

}  // namespace spillway::ui
