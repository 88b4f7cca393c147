// Under the Backends table: each pool's balancing policy with the live
// score it gives every backend (switchable: a config change, validated,
// diffed, audited and undoable from the Policies page's history), and the
// automatic ejections and back-offs with their reasons, newest first.
#pragma once

#include <QWidget>
#include <functional>

#include "control/engine_client.h"

class QTableWidget;

namespace spillway::ui {

class BalancingPanel final : public QWidget {
  Q_OBJECT
 public:
  explicit BalancingPanel(control::EngineClient& client, QWidget* parent = nullptr);

  QTableWidget* poolsTable() { return pools_; }
  QTableWidget* eventsTable() { return events_; }
  // Asked before a switch; defaults to a confirmation dialog.
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }

  // The policy names a pool can take, as config spells them.
  static QStringList policies();

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  // Switches `model`'s pool to `policy` through a config apply based on the
  // version read (refused if the config changed meanwhile). Reports through
  // message(); returns whether it was applied.
  bool switchPolicy(const QString& model, const QString& policy);

 signals:
  void message(const QString& text);

 private:
  void showPools(const google::protobuf::RepeatedPtrField<v1::PoolState>& pools);
  void showEvents(const google::protobuf::RepeatedPtrField<v1::BackendEvent>& events);

  control::EngineClient& client_;
  QTableWidget* pools_;
  QTableWidget* events_;
  std::function<bool(const QString&)> confirm_;
};

}  // namespace spillway::ui
