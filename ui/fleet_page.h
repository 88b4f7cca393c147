// The Fleet page: remote engines reached over gRPC (address, TLS, token),
// their status and key rates side by side, and pushing one config to
// several: validated on every engine first, diffs shown, then applied one
// by one — the first selected is the canary — stopping at the first failure.
//
// Tokens are kept in a file only the user can read (0600) in the app's
// config directory; the rest of each entry in QSettings.
#pragma once

#include <QAbstractTableModel>
#include <QWidget>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "control/grpc_client.h"

class QTableView;
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

class FleetPage final : public QWidget {
  Q_OBJECT
 public:
  explicit FleetPage(QWidget* parent = nullptr);
  ~FleetPage() override;

  FleetModel* model() { return model_; }
  const std::vector<RemoteEngine>& engines() const { return engines_; }
  // Adds (or replaces) an engine and remembers it. The token goes to the
  // 0600 token file, never to QSettings.
  void addEngine(const RemoteEngine& engine);
  void removeEngine(const QString& name);

  struct PushResult {
    QString engine;
    bool applied = false;
    QString detail;  // diff, or the error
    int64_t version = 0;
  };
  // Validates `yaml` on every engine in `names` (nothing is applied if any
  // refuses it), then applies in order, stopping at the first failure.
  // Blocking (calls carry deadlines); the page runs it off the UI thread.
  std::vector<PushResult> push(const QString& yaml, const QString& comment, const QStringList& names);
  static std::vector<PushResult> pushTo(const std::vector<RemoteEngine>& engines, const QString& yaml,
                                        const QString& comment, const QStringList& names);

  static QString tokenFilePath();

 public slots:
  void refreshNow();  // fetches every engine's status off the UI thread

 signals:
  void message(const QString& text);
  void refreshed();

 private:
  void load();
  void save() const;
  static std::unique_ptr<control::GrpcEngineClient> connect(const RemoteEngine& e);

  std::vector<RemoteEngine> engines_;
  FleetModel* model_;
  QTableView* view_;
  QPlainTextEdit* results_;
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
