// The Cache page: what the response cache is doing now. A live chart of
// the hit ratio per tier (and overall) and one of requests per second by
// outcome (hits, misses, coalesced, bypassed); the tiers with their
// entries, bytes, hits, evictions, errors and skips; the Bloom filter; a
// lookup box (paste a request: is its answer cached, where, fresh or
// stale); and purge by model and/or tenant or flush everything — confirmed
// here, audited by the engine.
#pragma once

#include <QWidget>
#include <functional>
#include <optional>

#include "control/engine_client.h"

class QChart;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QTableWidget;
class QValueAxis;

namespace spillway::ui {

class LiveSeries;

class CachePage final : public QWidget {
  Q_OBJECT
 public:
  CachePage(control::EngineClient& client, QWidget* parent = nullptr);

  // Asked before a purge or flush; defaults to a confirmation dialog.
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }
  QTableWidget* tiers() { return tiers_; }
  QPlainTextEdit* lookupBody() { return lookup_body_; }
  QLineEdit* tenantEdit() { return tenant_; }
  QComboBox* modelBox() { return model_; }
  QString lookupResult() const;
  QString summaryText() const;
  QString bannerText() const;
  int hitRatioPoints() const;

 public slots:
  void showSnapshot(const spillway::v1::MetricsSnapshot& snapshot);
  void lookup();
  // Purges the chosen model and/or tenant.
  void purge();
  void flush();

 signals:
  void message(const QString& text);

 private:
  void showCache(const v1::CacheState& c);
  void runPurge(const v1::PurgeCacheRequest& r, const QString& what);

  control::EngineClient& client_;
  std::function<bool(const QString&)> confirm_;
  QLabel* banner_;
  QLabel* summary_;
  QLabel* bloom_;
  QTableWidget* tiers_;
  QPlainTextEdit* lookup_body_;
  QLineEdit* tenant_;
  QLabel* lookup_result_;
  QComboBox* model_;
  QChart* ratio_chart_;
  QValueAxis* ratio_x_;
  QValueAxis* ratio_y_;
  LiveSeries* ratio_[5];  // overall, memory, disk, redis; embedding inputs
  QChart* rate_chart_;
  QValueAxis* rate_x_;
  QValueAxis* rate_y_;
  LiveSeries* rate_[4];  // hits, misses, coalesced, bypassed
  std::optional<v1::CacheState> last_;
  int64_t first_ts_ms_ = 0;
  int64_t last_ts_ms_ = 0;
};

}  // namespace spillway::ui
