// The Fleet page: remote engines reached over gRPC (address, TLS, token),
// their status and key rates side by side, and pushing one config to
// several: validated on every engine first, diffs shown, then applied one
// by one — the first selected is the canary — stopping at the first failure.
//
// Tokens are kept in the OS keyring when one answers, else in a file only
// the user can read (0600) in the app's config directory (TokenStore); the
// rest of each entry in QSettings.
#pragma once

#include <QAbstractTableModel>
#include <QWidget>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "control/grpc_client.h"

class QLabel;
class QTableView;
class QTableWidget;
class QPlainTextEdit;

namespace spillway::ui {

struct RemoteEngine {
  QString name;
  control::GrpcClientOptions options;
};

struct RemoteState {
  bool reachable = false;
  QString detail;  // status line, or why it is unreachable
  double rps = 0, error_rate = 0, p99_ms = 0;
  int64_t config_version = 0;
};

class FleetModel final : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { kName, kAddress, kStatus, kConfig, kRps, kErrors, kP99, kColumnCount };
  using QAbstractTableModel::QAbstractTableModel;

  void setEngines(const std::vector<RemoteEngine>& engines);
  void setState(const QString& name, const RemoteState& state);
  const RemoteState* state(const QString& name) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  std::vector<RemoteEngine> engines_;
  std::map<QString, RemoteState> states_;
};

// How FleetPage::push runs: see there.
struct PushOptions {
  bool preview = false;
  std::map<QString, int64_t> expected;  // engine -> version its preview diffed against
};

class FleetPage final : public QWidget {
  Q_OBJECT
 public:
  explicit FleetPage(QWidget* parent = nullptr);
  ~FleetPage() override;

  FleetModel* model() { return model_; }
  QPlainTextEdit* results() { return results_; }
  // What the Push button does once a file is chosen: per-engine diffs,
  // confirmation (setConfirm), then the apply, canary first, all off the UI
  // thread; results() shows the outcome and pushed() fires.
  void pushSelected(const QString& yaml, const QString& comment, const QStringList& names);
  const std::vector<RemoteEngine>& engines() const { return engines_; }
  // Adds (or replaces) an engine and remembers it. The token goes to the
  // OS keyring, else to the 0600 token file (TokenStore), never to QSettings.
  void addEngine(const RemoteEngine& engine);
  void removeEngine(const QString& name);

  struct PushResult {
    QString engine;
    bool applied = false;
    QString detail;  // diff, or the error
    int64_t version = 0;
  };
  // Validates `yaml` on every engine in `names` and diffs it against each
  // one's running config (nothing is applied if any refuses it), then
  // applies in order, stopping at the first failure. With `preview` it
  // stops after the diffs (`version` = the version each diff is against).
  // `expected` (engine -> version, from a preview) refuses an engine whose
  // config changed since. Blocking (calls carry deadlines); the page runs it
  // off the UI thread.
  std::vector<PushResult> push(const QString& yaml, const QString& comment, const QStringList& names,
                               const PushOptions& options = {});
  static std::vector<PushResult> pushTo(const std::vector<RemoteEngine>& engines, const QString& yaml,
                                        const QString& comment, const QStringList& names,
                                        const PushOptions& options = {});

  static QString tokenFilePath();  // the TokenStore's fallback file
  static std::unique_ptr<control::GrpcEngineClient> connect(const RemoteEngine& e);
  // The replicas registered with the engine this window is on (its
  // GetFleet): one row each, a replica on another fleet config version or
  // with its limits local flagged. "Add these replicas" puts each one not
  // yet listed into the engines above (name: its id; address: its control
  // plane), with one token asked for them all.
  void showReplicas(const v1::FleetState& state);
  QTableWidget* replicas() { return replicas_; }
  QLabel* fleetSummary() { return fleet_summary_; }
  // The engines "Add these replicas" would add now (not listed yet, with a
  // control plane), each with `token`.
  std::vector<RemoteEngine> replicasToAdd(const std::string& token) const;

  // Asked before a push with the per-engine diffs; defaults to a dialog.
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }

 public slots:
  void refreshNow();  // fetches every engine's status off the UI thread

 signals:
  void message(const QString& text);
  void refreshed();
  // "Open console" on an engine: the app opens a window on it.
  void openRequested(const spillway::ui::RemoteEngine& engine);
  void pushed();  // a push from the page finished; results() shows it

 private:
  void load();
  void save() const;
  std::function<bool(const QString&)> confirm_;

  std::vector<RemoteEngine> engines_;
  FleetModel* model_;
  QTableView* view_;
  QPlainTextEdit* results_;
  QLabel* fleet_summary_;
  QTableWidget* replicas_;
  v1::FleetState fleet_state_;
  // Background refreshes and pushes. Finished ones are joined when the next
  // starts; the rest on destruction.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  template <typename Fn>
  void startWorker(Fn fn);
  std::vector<Worker> workers_;
};

}  // namespace spillway::ui
