// The Backends page: a sortable, filterable table of backend states, with
// drain and undrain (confirmed, audited by the engine).
#pragma once

#include <QWidget>
#include <functional>

#include "control/engine_client.h"
#include "ui/backends_model.h"

class QLineEdit;
class QPushButton;
class QSortFilterProxyModel;
class QTableView;

namespace spillway::ui {

class BackendsPage final : public QWidget {
  Q_OBJECT
 public:
  BackendsPage(control::EngineClient& client, QWidget* parent = nullptr);

  BackendsModel* model() { return model_; }
  // Asked before drain/undrain; defaults to a confirmation dialog.
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }
  // Selects the row of `backend` (for keyboard users and tests).
  bool select(const QString& backend);

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  void drainSelected();
  void undrainSelected();

 signals:
  void message(const QString& text);

 private:
  void setDrained(bool drained);

  control::EngineClient& client_;
  BackendsModel* model_;
  QSortFilterProxyModel* proxy_;
  QTableView* view_;
  QLineEdit* filter_;
  std::function<bool(const QString&)> confirm_;
};

}  // namespace spillway::ui
