#include "ui/alert_rules.h"

#include <QObject>
#include <QSettings>

namespace spillway::ui {

QStringList AlertRules::feed(int64_t ts, double error_rate_now, double mean_latency_now,
                             std::optional<double> gpu_now) {
  auto track = [ts](std::optional<int64_t>& since, bool bad) {
    if (!bad) since.reset();
    else if (!since) since = ts;
  };
  track(error_since_, error_rate_now > error_rate.threshold);
  track(latency_since_, mean_latency_now > mean_latency_seconds.threshold);
  track(gpu_since_, gpu_now && *gpu_now > gpu_utilisation.threshold);
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
  if (gpu_since_ && ts - *gpu_since_ >= gpu_utilisation.for_ms) {
    firing << QObject::tr("GPU utilisation %1 % above %2 % for %3 min")
                  .arg(*gpu_now * 100, 0, 'f', 0)
                  .arg(gpu_utilisation.threshold * 100, 0, 'f', 0)
                  .arg((ts - *gpu_since_) / 60000);
  }
  return firing;
}

namespace {
const std::pair<const char*, AlertRules::Rule AlertRules::*> kRules[] = {
    {"error_rate", &AlertRules::error_rate},
    {"mean_latency_seconds", &AlertRules::mean_latency_seconds},
    {"gpu_utilisation", &AlertRules::gpu_utilisation},
};
}  // namespace

void AlertRules::load(const QSettings& settings) {
  for (const auto& [key, member] : kRules) {
    Rule& r = this->*member;
    const QString k = QString("alerts/") + key;
    bool ok = false;
    const double threshold = settings.value(k + "/threshold").toDouble(&ok);
    if (ok && threshold >= 0) r.threshold = threshold;
    const qlonglong for_ms = settings.value(k + "/for_ms").toLongLong(&ok);
    if (ok && for_ms >= 0) r.for_ms = for_ms;
  }
}

void AlertRules::save(QSettings& settings) const {
  for (const auto& [key, member] : kRules) {
    const Rule& r = this->*member;
    const QString k = QString("alerts/") + key;
    settings.setValue(k + "/threshold", r.threshold);
    settings.setValue(k + "/for_ms", static_cast<qlonglong>(r.for_ms));
  }
}

}  // namespace spillway::ui
