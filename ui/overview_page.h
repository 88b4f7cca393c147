// The Overview page: KPI tiles and charts — throughput by outcome, latency
// percentiles, TTFT, error rate and requests in flight — over the last five
// minutes live, fed one snapshot at a time, or over the last hour or day
// from the engine's recorded history. Alert banners when the article's
// rules fire; their thresholds are editable and remembered.
//
// Charts are declared as data (which sample field each line shows), so a
// later signal is one more line in the table, not new drawing code. Each
// chart is refreshed with one QXYSeries::replace() per line per snapshot.
#pragma once

#include <QWidget>
#include <deque>
#include <vector>

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

  // The tile texts, by name ("rps", "success", "p99", "ttft", "backends",
  // "in_flight", and "figure:KEY" for each figure a snapshot carries).
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
  // The chart titles, in layout order, and a line's points (for tests).
  QStringList chartTitles() const;
  QList<QPointF> linePoints(const QString& chart, const QString& line) const;
  bool chartsAreDark() const;

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  // A dialog for the alert thresholds; saved in QSettings on OK.
  void editAlertRules();

 protected:
  void changeEvent(QEvent* event) override;  // palette changes re-theme the charts

 private:
  struct Sample {
    double t_s = 0;
    double ok_per_s = 0, errors_per_s = 0, p50_ms = 0, p99_ms = 0, ttft_p95_ms = 0, error_pct = 0, in_flight = 0;
  };
  struct Line {
    QLineSeries* series;
    double Sample::*field;
  };
  struct Chart {
    QChart* chart;
    QValueAxis *x, *y;
    std::vector<Line> lines;
  };
  QLabel* addTile(QGridLayout* grid, int index, const QString& name, const QString& title);
  void showFigures(const google::protobuf::RepeatedPtrField<v1::Figure>& figures);
  void addChart(QGridLayout* grid, int row, int col, const QString& title, const QString& unit,
                std::vector<std::pair<QString, double Sample::*>> lines);
  void draw(const std::vector<Sample>& samples, double x0, double x1);
  void redraw();
  void loadHistory();
  void applyChartTheme();

  std::map<QString, QLabel*> tiles_;
  QGridLayout* tile_grid_ = nullptr;
  int tile_count_ = 0;
  QLabel* banner_;
  AlertRules rules_;
  std::deque<Sample> points_;  // the last kWindowSeconds
  std::vector<Chart> charts_;
  int64_t first_ts_ms_ = 0;
  int64_t last_ts_ms_ = 0;
  control::EngineClient* history_ = nullptr;
  int window_s_ = 0;
  int64_t history_loaded_ms_ = 0;
  QComboBox* window_box_;
  static constexpr double kWindowSeconds = 300;
};

}  // namespace spillway::ui
