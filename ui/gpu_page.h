// The GPU page: each GPU drawn as its 7 compute and 8 memory slices with
// its MIG instances as blocks (profile, bound backend, classes placed
// there, in flight against capacity, queue) — live from the snapshot; the
// launched workers with their state and restarts; and the layout planner
// as a dialog (GPUs and a demand mix in, layouts out, nvidia-smi commands
// with a copy button). The planner never applies anything.
#pragma once

#include <QDialog>
#include <QWidget>

#include "control/engine_client.h"

class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QScrollArea;
class QSpinBox;
class QTableWidget;

namespace spillway::ui {

// The slices picture: paints a GpuState.
class GpuView final : public QWidget {
  Q_OBJECT
 public:
  explicit GpuView(QWidget* parent = nullptr);
  void setState(const v1::GpuState& state);
  QSize sizeHint() const override;

 protected:
  void paintEvent(QPaintEvent*) override;

 private:
  v1::GpuState state_;
};

class PlannerDialog final : public QDialog {
  Q_OBJECT
 public:
  PlannerDialog(control::EngineClient& client, QWidget* parent = nullptr);
  QTableWidget* demands() { return demands_; }
  QComboBox* modelBox() { return model_; }
  QSpinBox* countBox() { return count_; }
  QString resultText() const;
  // Layout 1's commands, one per line (what Copy puts on the clipboard).
  QString commands() const { return commands_; }

 public slots:
  void plan();
  void copyCommands();

 private:
  void addDemand(const QString& name, const QString& priority, double gb, double share);

  control::EngineClient& client_;
  QComboBox* model_;
  QSpinBox* count_;
  QTableWidget* demands_;
  QPlainTextEdit* result_;
  QPushButton* copy_;
  QString commands_;
};

class GpuPage final : public QWidget {
  Q_OBJECT
 public:
  GpuPage(control::EngineClient& client, QWidget* parent = nullptr);
  GpuView* view() { return view_; }
  QTableWidget* workers() { return workers_; }
  QString summaryText() const;
  // The planner, created on first use (tests drive it).
  PlannerDialog* planner();

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  void openPlanner();

 signals:
  void message(const QString& text);

 private:
  control::EngineClient& client_;
  QLabel* summary_;
  QScrollArea* scroll_;
  GpuView* view_;
  QTableWidget* workers_;
  PlannerDialog* planner_ = nullptr;
};

}  // namespace spillway::ui
