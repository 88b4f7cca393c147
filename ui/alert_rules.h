// The article's alert rules over live snapshots: error rate above a
// threshold for a sustained time (default > 5 % for 5 min) and mean latency
// above a threshold (> 2 s for 10 min). A rule fires once its condition has
// held continuously for the duration and clears as soon as it stops. GPU
// utilisation (> 90 % for 3 min) joins when the GPU scheduler exports it.
// Time comes from the snapshots, so tests drive it.
#pragma once

#include <QString>
#include <QStringList>
#include <cstdint>
#include <optional>

namespace spillway::ui {

class AlertRules {
 public:
  struct Rule {
    double threshold;
    int64_t for_ms;
  };
  Rule error_rate{0.05, 5 * 60'000};
  Rule mean_latency_seconds{2.0, 10 * 60'000};

  // Feeds one observation; returns the alerts firing now.
  QStringList feed(int64_t ts_ms, double error_rate, double mean_latency_seconds);

 private:
  std::optional<int64_t> error_since_, latency_since_;
};

}  // namespace spillway::ui
