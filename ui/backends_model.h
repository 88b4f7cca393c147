// Backend states as a table, one row per backend: state, pools, weights,
// load, recent rates, latency and the last error, plus a requests-per-second
// trend for a sparkline. Rates come from two consecutive snapshots (the
// counters are totals), so the model works the same for the embedded
// engine and a remote one. One dataChanged per update when the rows are the
// same backends, a reset when the set changed.
#pragma once

#include <QAbstractTableModel>
#include <deque>
#include <map>

#include "spillway/v1/control.pb.h"

namespace spillway::ui {

class BackendsModel final : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column {
    kName,
    kState,
    kPools,
    kWeight,
    kInFlight,
    kRate,
    kErrorRate,
    kLatency,
    kMsPerToken,
    kEjections,
    kConnections,
    kTrend,
    kLastError,
    kUrl,
    kColumnCount
  };
  // Role of kTrend: a QVariantList of requests/s, oldest first.
  static constexpr int kTrendRole = Qt::UserRole + 1;
  static constexpr int kTrendPoints = 60;

  explicit BackendsModel(QObject* parent = nullptr) : QAbstractTableModel(parent) {}

  // `ts_ms` is the snapshot's time; rates need two updates.
  void update(const google::protobuf::RepeatedPtrField<v1::BackendState>& backends, int64_t ts_ms);
  QString nameAt(int row) const;
  const v1::BackendState* stateAt(int row) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  struct Row {
    v1::BackendState state;
    double rate = 0;        // requests/s over the last interval
    double error_rate = 0;  // failures / requests over the last interval
  };
  struct Trend {
    std::deque<double> rates;
    uint64_t requests = 0, failures = 0;
    int64_t ts_ms = 0;
  };
  std::vector<Row> rows_;
  std::map<std::string, Trend> trends_;  // by backend name; survives resets
};

}  // namespace spillway::ui
