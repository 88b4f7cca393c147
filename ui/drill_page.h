// The Traffic drill page: run a load-generator scenario against an engine's
// OpenAI endpoint and watch the effect live on the other pages — the
// incident rehearsal. Runs off the UI thread; Stop cancels (requests already
// sent are drained).
#pragma once

#include <QWidget>
#include <atomic>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "spillway/v1/bench.pb.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace spillway::ui {

class DrillPage final : public QWidget {
  Q_OBJECT
 public:
  DrillPage(const QString& default_target, QWidget* parent = nullptr);
  ~DrillPage() override;

  // The scenario the form describes: a shape ("steady", "burst", "ramp")
  // at a rate, or a scenario file (the format spillway-bench and
  // tests/bench/scenarios/ use) aimed at the endpoint above. Errors name the
  // file and the field.
  absl::StatusOr<v1::Scenario> scenario() const;
  QLineEdit* scenarioFile() { return file_; }
  QComboBox* shape() { return shape_; }
  bool running() const { return running_; }
  QPlainTextEdit* report() { return report_; }
  QLineEdit* target() { return target_; }
  QLineEdit* model() { return model_; }
  QDoubleSpinBox* rate() { return rate_; }
  QSpinBox* seconds() { return seconds_; }

 public slots:
  void start();
  void stop();

 signals:
  void finished();
  void message(const QString& text);

 private:
  QLineEdit* target_;
  QLineEdit* model_;
  QComboBox* shape_;
  QDoubleSpinBox* rate_;
  QSpinBox* seconds_;
  QLineEdit* file_;
  QPushButton* start_;
  QPushButton* stop_;
  QLabel* progress_;
  QPlainTextEdit* report_;
  bool running_ = false;
  std::shared_ptr<std::atomic<bool>> cancel_;
  std::thread thread_;
};

}  // namespace spillway::ui
