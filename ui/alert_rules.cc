#include "ui/alert_rules.h"

#include <QObject>

namespace spillway::ui {

QStringList AlertRules::feed(int64_t ts, double error_rate_now, double mean_latency_now) {
  auto track = [ts](std::optional<int64_t>& since, bool bad) {
    if (!bad) since.reset();
    else if (!since) since = ts;
  };
  track(error_since_, error_rate_now > error_rate.threshold);
  track(latency_since_, mean_latency_now > mean_latency_seconds.threshold);
  QStringList firing;
  if (error_since_ && ts - *error_since_ >= error_rate.for_ms) {
    firing << QObject::tr("Error rate %1 % above %2 % for %3 min")
                  .arg(error_rate_now * 100, 0, 'f', 1)
                  .arg(error_rate.threshold * 100, 0, 'f', 1)
                  .arg((ts - *error_since_) / 60000);
  }
  if (latency_since_ && ts - *latency_since_ >= mean_latency_seconds.for_ms) {
    firing << QObject::tr("Mean latency %1 s above %2 s for %3 min")
                  .arg(mean_latency_now, 0, 'f', 2)
                  .arg(mean_latency_seconds.threshold, 0, 'f', 2)
                  .arg((ts - *latency_since_) / 60000);
  }
  return firing;
}

}  // namespace spillway::ui
