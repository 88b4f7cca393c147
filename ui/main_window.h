// The console's main window: a page list (Overview, Backends, Policies)
// over one EngineClient, refreshed from a snapshot once a second. The
// window never blocks on an engine: snapshots of the embedded engine are
// cheap reads, and a remote engine's calls carry deadlines.
#pragma once

#include <QMainWindow>

#include "control/engine_client.h"

class QListWidget;
class QStackedWidget;
class QTimer;
class QToolBar;

namespace spillway::ui {

class OverviewPage;
class BackendsPage;
class PoliciesPage;
class FleetPage;
class AuditPage;
class DrillPage;

class MainWindow final : public QMainWindow {
  Q_OBJECT
 public:
  // `engine_label` names the engine in the status bar (e.g. its URL); it is
  // also the drill page's default target.
  MainWindow(control::EngineClient& client, const QString& engine_label, QWidget* parent = nullptr);

  OverviewPage* overview() { return overview_; }
  BackendsPage* backends() { return backends_; }
  PoliciesPage* policies() { return policies_; }
  FleetPage* fleet() { return fleet_; }
  AuditPage* audit() { return audit_; }
  DrillPage* drill() { return drill_; }
  void showPage(int index);
  int pageCount() const;
  QString pageName(int index) const;
  // Adds a checkable toolbar action (the app adds "Demo traffic").
  QAction* addToggle(const QString& text, const QString& tip);

 public slots:
  void refresh();  // one snapshot now

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  control::EngineClient& client_;
  QListWidget* nav_;
  QStackedWidget* stack_;
  OverviewPage* overview_;
  BackendsPage* backends_;
  PoliciesPage* policies_;
  FleetPage* fleet_;
  DrillPage* drill_;
  AuditPage* audit_;
  QTimer* timer_;
  QToolBar* toolbar_;
  int64_t last_snapshot_ms_ = 0;
};

}  // namespace spillway::ui
