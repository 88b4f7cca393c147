// The Overview page: KPI tiles and charts (throughput by outcome, latency)
// over the last five minutes live, fed one snapshot at a time, or over the
// last hour or day from the engine's recorded history.
// Each chart is refreshed with one QXYSeries::replace() from a preallocated
// buffer per snapshot, never one append per point.
#pragma once

#include <QWidget>
#include <deque>

#include "control/engine_client.h"
#include "spillway/v1/control.pb.h"
#include "ui/alert_rules.h"

class QGridLayout;
class QLabel;
class QLineSeries;
class QValueAxis;
class QChart;
class QComboBox;

namespace spillway::ui {

class OverviewPage final : public QWidget {
  Q_OBJECT
 public:
  explicit OverviewPage(QWidget* parent = nullptr);

  // The tile texts, by name ("rps", "success", "p99", "ttft", "backends", "in_flight").
  QString tileText(const QString& name) const;
  int pointCount() const { return static_cast<int>(points_.size()); }
  AlertRules& alertRules() { return rules_; }
  QString alertText() const;  // "" when no alert fires
  // Where 1 h / 24 h charts come from (the engine's history); null = live only.
  void setHistorySource(control::EngineClient* client) { history_ = client; }
  // 0 = live (last 5 min of snapshots); else seconds of recorded history.
  void setWindow(int seconds);
  int window() const { return window_s_; }
  int chartPointCount() const;  // points in the throughput chart now

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);

 private:
  struct Point {
    double t_s;
    double ok_per_s, errors_per_s, p50_ms, p99_ms;
  };
  QLabel* addTile(QGridLayout* grid, int index, const QString& name, const QString& title);
  void redraw();
  void loadHistory();

  std::map<QString, QLabel*> tiles_;
  QLabel* banner_;
  AlertRules rules_;
  std::deque<Point> points_;  // the last kWindow seconds
  QLineSeries *ok_, *errors_, *p50_, *p99_;
  QValueAxis *throughput_x_, *throughput_y_, *latency_x_, *latency_y_;
  int64_t first_ts_ms_ = 0;
  int64_t last_ts_ms_ = 0;
  control::EngineClient* history_ = nullptr;
  int window_s_ = 0;
  int64_t history_loaded_ms_ = 0;
  QComboBox* window_box_;
  static constexpr double kWindowSeconds = 300;
};

}  // namespace spillway::ui
