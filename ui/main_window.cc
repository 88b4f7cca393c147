#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QActionGroup>
#include <QCloseEvent>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QKeySequence>
#include <QLineEdit>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTimer>
#include <QToolBar>

#include "control/grpc_client.h"
#include "control/tls.h"
#include "ui/admission_page.h"
#include "ui/cache_page.h"
#include "ui/gpu_page.h"
#include "ui/audit_page.h"
#include "ui/backends_page.h"
#include "ui/drill_page.h"
#include "ui/fleet_page.h"
#include "ui/overview_page.h"
#include "ui/policies_page.h"
#include "ui/text.h"
#include "ui/theme.h"
#include "ui/usage_page.h"

namespace spillway::ui {

MainWindow::MainWindow(control::EngineClient& client, const QString& engine_label, QWidget* parent)
    : QMainWindow(parent), client_(client), nav_(new QListWidget(this)), stack_(new QStackedWidget(this)),
      overview_(new OverviewPage(this)), backends_(new BackendsPage(client, this)),
      admission_(new AdmissionPage(client, this)), cache_(new CachePage(client, this)),
      gpu_(new GpuPage(client, this)),
      policies_(new PoliciesPage(client, this)),
      fleet_(new FleetPage(this)),
      drill_(new DrillPage(engine_label, this)), audit_(new AuditPage(client, this)),
      usage_(new UsagePage(client, this)), timer_(new QTimer(this)),
      toolbar_(addToolBar(tr("Main"))) {
  setWindowTitle(tr("Spillway console — %1").arg(engine_label));
  toolbar_->setObjectName("main-toolbar");
  const QList<QPair<QString, QWidget*>> pages = {
      {tr("Overview"), overview_}, {tr("Backends"), backends_}, {tr("Admission"), admission_},
      {tr("Cache"), cache_},       {tr("GPUs"), gpu_},           {tr("Policies"), policies_},  {tr("Fleet"), fleet_},        {tr("Traffic drill"), drill_},
      {tr("Audit"), audit_},       {tr("Usage"), usage_}};
  for (const auto& [name, page] : pages) {
    nav_->addItem(name);
    stack_->addWidget(page);
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

  for (auto* page : {static_cast<QObject*>(backends_), static_cast<QObject*>(admission_), static_cast<QObject*>(cache_), static_cast<QObject*>(gpu_),
                     static_cast<QObject*>(policies_), static_cast<QObject*>(fleet_),
                     static_cast<QObject*>(drill_), static_cast<QObject*>(audit_), static_cast<QObject*>(usage_)}) {
    connect(page, SIGNAL(message(QString)), statusBar(), SLOT(showMessage(QString)));
  }
  connect(fleet_, &FleetPage::openRequested, this, &MainWindow::openRemote);
  statusBar()->showMessage(tr("Engine: %1").arg(engine_label));
  buildMenus();

  timer_->setInterval(1000);
  connect(timer_, &QTimer::timeout, this, &MainWindow::refresh);
  timer_->start();

  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  restoreState(settings.value("window/state").toByteArray());
  if (!settings.contains("window/geometry")) resize(1200, 800);
  showPage(settings.value("window/page", 0).toInt());
}

MainWindow* MainWindow::openOwned(control::EngineClientPtr client, const QString& engine_label) {
  control::EngineClient& ref = *client;
  auto* w = new MainWindow(ref, engine_label);
  w->owned_ = std::move(client);
  w->setAttribute(Qt::WA_DeleteOnClose);
  w->show();
  return w;
}

MainWindow::~MainWindow() {
  timer_->stop();
  // Pages refer to the client: take them down before an owned client goes.
  delete centralWidget();
}

void MainWindow::buildMenus() {
  auto* file = menuBar()->addMenu(tr("&File"));
  auto* connect_action = file->addAction(tr("&Connect to engine…"), this, &MainWindow::connectDialog);
  connect_action->setShortcut(QKeySequence("Ctrl+O"));
  connect_action->setToolTip(tr("Open a console window on a remote spillwayd (gRPC control plane)"));
  file->addSeparator();
  auto* close_action = file->addAction(tr("&Close window"), this, &QWidget::close);
  close_action->setShortcut(QKeySequence::Close);
  auto* quit = file->addAction(tr("&Quit"), qApp, &QApplication::closeAllWindows);
  quit->setShortcut(QKeySequence::Quit);

  auto* view = menuBar()->addMenu(tr("&View"));
  for (int i = 0; i < stack_->count(); ++i) {
    auto* go = view->addAction(nav_->item(i)->text(), this, [this, i] { showPage(i); });
    // Ctrl+1..9, then Ctrl+0 for the tenth.
    if (i < 10) go->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(i < 9 ? Qt::Key_1 + i : Qt::Key_0)));
  }
  view->addSeparator();
  auto* refresh_action = view->addAction(tr("&Refresh now"), this, &MainWindow::refresh);
  refresh_action->setShortcut(QKeySequence::Refresh);
  view->addAction(tr("&Alert rules…"), overview_, &OverviewPage::editAlertRules);
  auto* themes = view->addMenu(tr("&Theme"));
  auto* group = new QActionGroup(this);
  for (Theme t : {Theme::kSystem, Theme::kLight, Theme::kDark}) {
    auto* a = themes->addAction(themeName(t), this, [t] {
      applyTheme(t);
      saveTheme(t);
    });
    a->setCheckable(true);
    a->setChecked(t == savedTheme());
    a->setObjectName(QString("theme-%1").arg(themeName(t).toLower()));
    group->addAction(a);
  }

  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&Keyboard shortcuts"), this, [this] {
    QString text;
    for (QMenu* m : menuBar()->findChildren<QMenu*>()) {
      for (QAction* a : m->actions()) {
        if (!a->shortcut().isEmpty()) {
          text += QString("%1\t%2\n").arg(a->shortcut().toString(QKeySequence::NativeText), a->text().remove('&'));
        }
      }
    }
    for (QAction* a : backends_->actions()) {
      if (!a->shortcut().isEmpty()) {
        text += QString("%1\t%2 (Backends)\n").arg(a->shortcut().toString(QKeySequence::NativeText), a->text().remove('&'));
      }
    }
    QMessageBox::information(this, tr("Keyboard shortcuts"), text);
  });
}

void MainWindow::refresh() {
  auto s = client_.snapshot();
  if (!s.ok()) {
    statusBar()->showMessage(tr("Engine unavailable: %1").arg(qs(s.status().message())));
    return;
  }
  if (s->ts_ms() == last_snapshot_ms_) return;  // a remote engine's feed has nothing newer yet
  last_snapshot_ms_ = s->ts_ms();
  overview_->showSnapshot(*s);
  backends_->showSnapshot(*s);
  admission_->showSnapshot(*s);
  cache_->showSnapshot(*s);
  gpu_->showSnapshot(*s);
  if (auto f = client_.getFleet(); f.ok()) fleet_->showReplicas(*f);
}

bool MainWindow::openRemote(const RemoteEngine& engine) {
  auto client = FleetPage::connect(engine);
  if (!client) {
    statusBar()->showMessage(tr("Cannot open %1: check its address and files").arg(engine.name));
    return false;
  }
  openOwned(std::move(client), QString("%1 (%2)").arg(engine.name, QString::fromStdString(engine.options.address)));
  return true;
}

void MainWindow::connectDialog() {
  QSettings settings;
  QDialog d(this);
  d.setWindowTitle(tr("Connect to a remote engine"));
  auto* address = new QLineEdit(settings.value("connect/address", "127.0.0.1:50051").toString(), &d);
  auto* token_file = new QLineEdit(settings.value("connect/token_file").toString(), &d);
  token_file->setPlaceholderText(tr("e.g. /var/lib/spillway/control.token"));
  auto* ca = new QLineEdit(settings.value("connect/ca").toString(), &d);
  ca->setPlaceholderText(tr("PEM file to trust (enables TLS); empty for plaintext loopback"));
  auto* server_name = new QLineEdit(settings.value("connect/server_name").toString(), &d);
  auto* form = new QFormLayout(&d);
  form->addRow(tr("Control address"), address);
  form->addRow(tr("Token file"), token_file);
  form->addRow(tr("CA / certificate"), ca);
  form->addRow(tr("Server name"), server_name);
  auto* box = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &d);
  form->addRow(box);
  connect(box, &QDialogButtonBox::accepted, &d, &QDialog::accept);
  connect(box, &QDialogButtonBox::rejected, &d, &QDialog::reject);
  if (d.exec() != QDialog::Accepted) return;
  // Remembered: where to connect and which file holds the token, never the token.
  settings.setValue("connect/address", address->text());
  settings.setValue("connect/token_file", token_file->text());
  settings.setValue("connect/ca", ca->text());
  settings.setValue("connect/server_name", server_name->text());
  RemoteEngine e;
  e.name = address->text();
  e.options.address = address->text().toStdString();
  e.options.ca_file = ca->text().toStdString();
  e.options.server_name = server_name->text().toStdString();
  if (!token_file->text().isEmpty()) {
    auto token = control::readTokenFile(token_file->text().toStdString());
    if (!token.ok()) {
      QMessageBox::warning(this, tr("Connect"), qs(token.status().message()));
      return;
    }
    e.options.token = *token;
  }
  openRemote(e);
}

void MainWindow::showPage(int index) {
  if (index >= 0 && index < stack_->count()) nav_->setCurrentRow(index);
}
int MainWindow::currentPage() const { return nav_->currentRow(); }
int MainWindow::pageCount() const { return stack_->count(); }
QString MainWindow::pageName(int index) const { return nav_->item(index)->text(); }

QAction* MainWindow::addToggle(const QString& text, const QString& tip) {
  auto* a = toolbar_->addAction(text);
  a->setCheckable(true);
  a->setToolTip(tip);
  return a;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!owned_) {  // the primary window's layout is the one remembered
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState());
    settings.setValue("window/page", currentPage());
  }
  event->accept();
}

}  // namespace spillway::ui
