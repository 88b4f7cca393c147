// The Usage page: who is sending what, and who is being turned away. The
// top tenants over the last hour, day or week (from the engine's usage
// history) with their requests, tokens, cache hits and sheds, each as a
// share of the fleet's — a bar chart sets a tenant's share of the requests
// beside its share of the sheds, so a greedy tenant (large share of both)
// and a starved one (sheds out of proportion) stand out — and the newest
// refused, failed or degraded requests with their trace ids (the key into
// the access log and the backends' traces). Reloaded when shown, on
// Refresh, and every 5 s while visible.
#pragma once

#include <QWidget>

#include "control/engine_client.h"

class QBarCategoryAxis;
class QBarSet;
class QChart;
class QComboBox;
class QLabel;
class QTableWidget;
class QTimer;

namespace spillway::ui {

class UsagePage final : public QWidget {
  Q_OBJECT
 public:
  UsagePage(control::EngineClient& client, QWidget* parent = nullptr);

  QTableWidget* tenants() { return tenants_; }
  QTableWidget* events() { return events_; }
  QComboBox* range() { return range_; }
  QString summaryText() const;
  // The chart's bars: tenant names and their request and shed shares (%).
  QStringList chartTenants() const;
  QList<double> requestShares() const;
  QList<double> shedShares() const;

 public slots:
  void reload();

 signals:
  void message(const QString& text);

 protected:
  void showEvent(QShowEvent* event) override;
  void hideEvent(QHideEvent* event) override;

 private:
  void show(const v1::UsageReport& report);

  control::EngineClient& client_;
  QComboBox* range_;
  QLabel* summary_;
  QTableWidget* tenants_;
  QTableWidget* events_;
  QChart* chart_;
  QBarSet* request_share_;
  QBarSet* shed_share_;
  QBarCategoryAxis* names_;
  QTimer* timer_;
};

}  // namespace spillway::ui
