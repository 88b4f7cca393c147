// Backend states as a table: name, state, in flight, open and idle
// connections, URL. Updated from snapshots; one dataChanged for the whole
// table when the rows are the same backends, a reset when the set changed.
#pragma once

#include <QAbstractTableModel>

#include "spillway/v1/control.pb.h"

namespace spillway::ui {

class BackendsModel final : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { kName, kState, kInFlight, kOpen, kIdle, kUrl, kColumnCount };

  explicit BackendsModel(QObject* parent = nullptr) : QAbstractTableModel(parent) {}

  void update(const google::protobuf::RepeatedPtrField<v1::BackendState>& backends);
  QString nameAt(int row) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  std::vector<v1::BackendState> rows_;
};

}  // namespace spillway::ui
