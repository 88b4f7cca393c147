// The console's main window: a page list (Overview, Backends, Policies,
// Fleet, Traffic drill, Audit) over one EngineClient, refreshed from a
// snapshot once a second. The window never blocks on an engine: snapshots
// of the embedded engine are cheap reads, and a remote engine's come from a
// metrics stream read in the background (GrpcEngineClient).
//
// Menus carry every main action with a shortcut (pages Ctrl+1..6, refresh
// F5, connect Ctrl+O, theme, alert rules); geometry, toolbar state, the
// last page and the last connection are remembered (QSettings). Remote
// consoles (File > Connect, or Fleet > Open console) open as further
// windows that own their gRPC client.
#pragma once

#include <QMainWindow>
#include <memory>

#include "control/engine_client.h"

class QListWidget;
class QStackedWidget;
class QTimer;
class QToolBar;

namespace spillway::ui {

class OverviewPage;
class BackendsPage;
class AdmissionPage;
class CachePage;
class GpuPage;
class PoliciesPage;
class FleetPage;
class AuditPage;
class UsagePage;
class DrillPage;
struct RemoteEngine;

class MainWindow final : public QMainWindow {
  Q_OBJECT
 public:
  // `engine_label` names the engine in the title and status bar (e.g. its
  // URL); it is also the drill page's default target.
  MainWindow(control::EngineClient& client, const QString& engine_label, QWidget* parent = nullptr);
  // A window that owns its client (a remote engine's), deleted on close.
  static MainWindow* openOwned(control::EngineClientPtr client, const QString& engine_label);
  ~MainWindow() override;

  OverviewPage* overview() { return overview_; }
  BackendsPage* backends() { return backends_; }
  PoliciesPage* policies() { return policies_; }
  AdmissionPage* admission() { return admission_; }
  CachePage* cache() { return cache_; }
  GpuPage* gpus() { return gpu_; }
  FleetPage* fleet() { return fleet_; }
  AuditPage* audit() { return audit_; }
  UsagePage* usage() { return usage_; }
  DrillPage* drill() { return drill_; }
  void showPage(int index);
  int currentPage() const;
  int pageCount() const;
  QString pageName(int index) const;
  // Adds a checkable toolbar action (the app adds "Demo traffic").
  QAction* addToggle(const QString& text, const QString& tip);
  QToolBar* toolbar() { return toolbar_; }

 public slots:
  void refresh();  // one snapshot now
  // Opens a console window on a remote engine; false (with a message) if
  // the address is malformed or its files cannot be read.
  bool openRemote(const spillway::ui::RemoteEngine& engine);
  void connectDialog();

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildMenus();

  std::unique_ptr<control::EngineClient> owned_;  // set for remote windows; outlives the pages' use
  control::EngineClient& client_;
  QListWidget* nav_;
  QStackedWidget* stack_;
  OverviewPage* overview_;
  BackendsPage* backends_;
  AdmissionPage* admission_;
  CachePage* cache_;
  GpuPage* gpu_;
  PoliciesPage* policies_;
  FleetPage* fleet_;
  DrillPage* drill_;
  AuditPage* audit_;
  UsagePage* usage_;
  QTimer* timer_;
  QToolBar* toolbar_;
  int64_t last_snapshot_ms_ = 0;
};

}  // namespace spillway::ui
