// The Audit page: the engine's audit log, filterable, exportable as CSV.
#pragma once

#include <QWidget>

#include "control/engine_client.h"

class QLineEdit;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;

namespace spillway::ui {

class AuditPage final : public QWidget {
  Q_OBJECT
 public:
  AuditPage(control::EngineClient& client, QWidget* parent = nullptr);

  QStandardItemModel* model() { return model_; }
  QSortFilterProxyModel* filtered() { return proxy_; }
  QLineEdit* filter() { return filter_; }
  // Writes the rows that pass the filter (RFC 4180 quoting). False on I/O error.
  bool exportCsv(const QString& path) const;

 public slots:
  void reload();

 signals:
  void message(const QString& text);

 protected:
  void showEvent(QShowEvent* event) override;

 private:
  control::EngineClient& client_;
  QStandardItemModel* model_;
  QSortFilterProxyModel* proxy_;
  QTableView* view_;
  QLineEdit* filter_;
};

}  // namespace spillway::ui
