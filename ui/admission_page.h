// The Admission page: what admission control is doing now. Live charts of
// the gateway queue's depth per priority class and of each pool's oldest
// waiting request (the degradation signal); a table per pool with its
// queue, service rate, sheds by reason and degradation level, with a pin
// control (confirmed, audited by the engine); each class's latency
// objective against the wait predicted now and the attainment so far; each backend's concurrency
// limit (learned or configured) against its requests in flight; the
// tenants with the most tokens served (the fairness counters); and the
// rate-limit scopes closest to their limits.
#pragma once

#include <QWidget>
#include <deque>
#include <functional>

#include "control/engine_client.h"

class QChart;
class QComboBox;
class QLabel;
class QTableWidget;
class QValueAxis;

namespace spillway::ui {

class LiveSeries;

class AdmissionPage final : public QWidget {
  Q_OBJECT
 public:
  AdmissionPage(control::EngineClient& client, QWidget* parent = nullptr);

  // Asked before a pin or release; defaults to a confirmation dialog.
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }
  QTableWidget* pools() { return pools_; }
  QTableWidget* limits() { return limits_; }
  QTableWidget* tenants() { return tenants_; }
  QTableWidget* rateLimits() { return rate_limits_; }
  QTableWidget* objectives() { return objectives_; }
  QComboBox* levelBox() { return level_; }
  QString bannerText() const;
  // Points on the queue-depth chart's line for a class.
  int depthPoints(const QString& cls) const;

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  // Pins the selected pool at the level chosen in the box ("automatic" releases).
  void applyLevel();

 signals:
  void message(const QString& text);

 private:
  void showAdmission(const v1::AdmissionState& a);

  control::EngineClient& client_;
  std::function<bool(const QString&)> confirm_;
  QLabel* banner_;
  QTableWidget* pools_;
  QTableWidget* limits_;
  QTableWidget* tenants_;
  QTableWidget* rate_limits_;
  QTableWidget* objectives_;
  QComboBox* level_;
  QChart* depth_chart_;
  QValueAxis* depth_x_;
  QValueAxis* depth_y_;
  LiveSeries* depth_[3];
  QChart* wait_chart_;
  QValueAxis* wait_x_;
  QValueAxis* wait_y_;
  std::map<QString, LiveSeries*> wait_;  // by pool
  int64_t first_ts_ms_ = 0;
  int64_t last_ts_ms_ = 0;
};

}  // namespace spillway::ui
