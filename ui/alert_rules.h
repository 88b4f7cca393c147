// The article's alert rules over live snapshots: error rate above a
// threshold for a sustained time (default > 5 % for 5 min), mean latency
// above a threshold (> 2 s for 10 min) and GPU utilisation (> 90 % for
// 3 min; the Overview passes the snapshot's "gpu_utilisation" figure, absent
// until the GPU scheduler reports it). A
// rule fires once its condition has held continuously for the duration and
// clears as soon as it stops. Time comes from the snapshots, so tests drive
// it. Thresholds are plain fields; load()/save() keep them in QSettings.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>
#include <optional>

class QSettings;

namespace spillway::ui {

class AlertRules {
 public:
  struct Rule {
    double threshold;
    int64_t for_ms;
  };
  Rule error_rate{0.05, 5 * 60'000};
  Rule mean_latency_seconds{2.0, 10 * 60'000};
  Rule gpu_utilisation{0.90, 3 * 60'000};

  // Feeds one observation; returns the alerts firing now.
  QStringList feed(int64_t ts_ms, double error_rate, double mean_latency_seconds,
                   std::optional<double> gpu_utilisation = std::nullopt);

  // Thresholds under "alerts/..."; absent keys keep the current values.
  void load(const QSettings& settings);
  void save(QSettings& settings) const;

 private:
  std::optional<int64_t> error_since_, latency_since_, gpu_since_;
};

}  // namespace spillway::ui
