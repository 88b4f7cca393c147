// The Backends page: a sortable, filterable table of backend states with a
// requests/s sparkline per row, and the incident actions — drain, undrain,
// eject for a while, readmit, change or reset the weight. Every action is
// confirmed first and audited by the engine.
#pragma once

#include <QWidget>
#include <functional>
#include <optional>

#include "control/engine_client.h"
#include "ui/backends_model.h"
#include "ui/balancing_panel.h"

class QLineEdit;
class QSortFilterProxyModel;
class QTableView;

namespace spillway::ui {

class BackendsPage final : public QWidget {
  Q_OBJECT
 public:
  BackendsPage(control::EngineClient& client, QWidget* parent = nullptr);

  BackendsModel* model() { return model_; }
  QTableView* view() { return view_; }
  BalancingPanel* balancing() { return balancing_; }
  // Asked before every action; defaults to a confirmation dialog.
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }
  // Asks for a number (eject seconds, weight); defaults to an input dialog.
  using AskNumber = std::function<std::optional<int>(const QString& label, int value, int min, int max)>;
  void setAskNumber(AskNumber ask) { ask_ = std::move(ask); }
  // Selects the row of `backend` (for keyboard users and tests).
  bool select(const QString& backend);

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  void drainSelected();
  void undrainSelected();
  void ejectSelected();
  void readmitSelected();
  void changeWeightOfSelected();
  void resetWeightOfSelected();

 signals:
  void message(const QString& text);

 private:
  // The selected backend's name, or "" (with a hint to select one).
  QString selected();
  // Confirms, runs `call`, shows the new states and reports the outcome.
  void act(const QString& question, const QString& done,
           const std::function<absl::StatusOr<v1::BackendList>()>& call);

  control::EngineClient& client_;
  BackendsModel* model_;
  QSortFilterProxyModel* proxy_;
  QTableView* view_;
  QLineEdit* filter_;
  BalancingPanel* balancing_;
  int64_t last_ts_ms_ = 0;
  std::function<bool(const QString&)> confirm_;
  AskNumber ask_;
};

}  // namespace spillway::ui
