#include "ui/backends_model.h"

#include <QBrush>
#include <QColor>

namespace spillway::ui {

void BackendsModel::update(const google::protobuf::RepeatedPtrField<v1::BackendState>& backends) {
  bool same = static_cast<int>(rows_.size()) == backends.size();
  for (int i = 0; same && i < backends.size(); ++i) same = rows_[static_cast<size_t>(i)].name() == backends[i].name();
  if (!same) {
    beginResetModel();
    rows_.assign(backends.begin(), backends.end());
    endResetModel();
    return;
  }
  rows_.assign(backends.begin(), backends.end());
  if (!rows_.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, kColumnCount - 1));
}

QString BackendsModel::nameAt(int row) const {
  if (row < 0 || row >= rowCount()) return {};
  return QString::fromStdString(rows_[static_cast<size_t>(row)].name());
}

int BackendsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int BackendsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kColumnCount; }

QVariant BackendsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const auto& b = rows_[static_cast<size_t>(index.row())];
  if (role == Qt::DisplayRole || role == Qt::UserRole) {
    switch (index.column()) {
      case kName: return QString::fromStdString(b.name());
      case kState: return QString::fromStdString(b.state());
      case kInFlight: return static_cast<qlonglong>(b.in_flight());
      case kOpen: return static_cast<qlonglong>(b.open_connections());
      case kIdle: return static_cast<qlonglong>(b.idle_connections());
      case kUrl: return QString::fromStdString(b.url());
      default: return {};
    }
  }
  if (role == Qt::ForegroundRole && index.column() == kState) {
    if (b.state() == "down") return QBrush(QColor(0xd0, 0x30, 0x30));
    if (b.state() == "draining") return QBrush(QColor(0xc0, 0x80, 0x00));
  }
  if (role == Qt::TextAlignmentRole && index.column() >= kInFlight && index.column() <= kIdle) {
    return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);
  }
  return {};
}

QVariant BackendsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  static const char* kNames[] = {"Backend", "State", "In flight", "Open", "Idle", "URL"};
  return section >= 0 && section < kColumnCount ? QString(kNames[section]) : QVariant();
}

}  // namespace spillway::ui
