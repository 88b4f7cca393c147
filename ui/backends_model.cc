#include "ui/backends_model.h"

#include <QBrush>
#include <QColor>
#include <QDateTime>
#include <QStringList>
#include <set>

namespace spillway::ui {

namespace {

QString timeOf(int64_t ms) { return QDateTime::fromMSecsSinceEpoch(ms).toString("HH:mm:ss"); }

QString weightText(const v1::BackendState& b) {
  const uint32_t base = b.weight_overridden() ? b.weight_override() : b.configured_weight();
  QString s = QString("%1 / %2").arg(b.effective_weight()).arg(base);
  if (b.weight_overridden()) s += "*";
  return s;
}

}  // namespace

void BackendsModel::update(const google::protobuf::RepeatedPtrField<v1::BackendState>& backends, int64_t ts_ms) {
  std::vector<Row> next;
  next.reserve(static_cast<size_t>(backends.size()));
  std::set<std::string> seen;
  for (const auto& b : backends) {
    Row row{b};
    Trend& t = trends_[b.name()];
    seen.insert(b.name());
    // Counters restart when a config change replaces the backend: skip that interval.
    if (t.ts_ms > 0 && ts_ms > t.ts_ms && b.requests_total() >= t.requests) {
      const double seconds = (ts_ms - t.ts_ms) / 1000.0;
      const uint64_t requests = b.requests_total() - t.requests;
      const uint64_t failures = b.failures_total() - std::min(b.failures_total(), t.failures);
      row.rate = static_cast<double>(requests) / seconds;
      row.error_rate = requests ? static_cast<double>(failures) / static_cast<double>(requests) : 0;
      t.rates.push_back(row.rate);
      while (t.rates.size() > kTrendPoints) t.rates.pop_front();
    }
    t.requests = b.requests_total();
    t.failures = b.failures_total();
    t.ts_ms = ts_ms;
    next.push_back(std::move(row));
  }
  std::erase_if(trends_, [&](const auto& kv) { return !seen.count(kv.first); });

  bool same = next.size() == rows_.size();
  for (size_t i = 0; same && i < next.size(); ++i) same = rows_[i].state.name() == next[i].state.name();
  if (!same) {
    beginResetModel();
    rows_ = std::move(next);
    endResetModel();
    return;
  }
  rows_ = std::move(next);
  if (!rows_.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, kColumnCount - 1));
}

QString BackendsModel::nameAt(int row) const {
  if (row < 0 || row >= rowCount()) return {};
  return QString::fromStdString(rows_[static_cast<size_t>(row)].state.name());
}

const v1::BackendState* BackendsModel::stateAt(int row) const {
  if (row < 0 || row >= rowCount()) return nullptr;
  return &rows_[static_cast<size_t>(row)].state;
}

int BackendsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int BackendsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kColumnCount; }

QVariant BackendsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= kColumnCount) return {};
  const Row& row = rows_[static_cast<size_t>(index.row())];
  const auto& b = row.state;
  const int col = index.column();
  if (role == Qt::DisplayRole) {
    switch (col) {
      case kName: return QString::fromStdString(b.name());
      case kState: return QString::fromStdString(b.state()).replace('_', ' ');
      case kPools: {
        QStringList pools;
        for (const auto& p : b.pools()) pools << QString::fromStdString(p);
        return pools.join(", ");
      }
      case kWeight: return weightText(b);
      case kInFlight:
        return b.max_concurrency() ? QString("%1 / %2").arg(b.in_flight()).arg(b.max_concurrency())
                                   : QString::number(b.in_flight());
      case kRate: return QString::number(row.rate, 'f', 1);
      case kErrorRate: return QString::number(row.error_rate * 100, 'f', 1) + " %";
      case kLatency: return b.requests_total() ? QString::number(b.ewma_latency_seconds() * 1000, 'f', 1) + " ms" : "–";
      case kMsPerToken: return b.ewma_ms_per_token() > 0 ? QString::number(b.ewma_ms_per_token(), 'f', 1) : "–";
      case kEjections: return QString("%1 / %2").arg(b.ejections_total()).arg(b.back_offs_total());
      case kConnections: return QString("%1 / %2").arg(b.open_connections()).arg(b.idle_connections());
      case kTrend: return {};
      case kLastError:
        return b.last_error().empty() ? QString()
                                      : QString("%1 %2").arg(timeOf(b.last_error_ms()), QString::fromStdString(b.last_error()));
      case kUrl: return QString::fromStdString(b.url());
    }
  }
  if (role == Qt::UserRole) {  // sort keys
    switch (col) {
      case kWeight: return b.effective_weight();
      case kInFlight: return static_cast<qlonglong>(b.in_flight());
      case kRate: return row.rate;
      case kErrorRate: return row.error_rate;
      case kLatency: return b.ewma_latency_seconds();
      case kMsPerToken: return b.ewma_ms_per_token();
      case kEjections: return static_cast<qulonglong>(b.ejections_total() + b.back_offs_total());
      case kConnections: return static_cast<qlonglong>(b.open_connections());
      case kTrend: return row.rate;
      case kLastError: return static_cast<qlonglong>(b.last_error_ms());
      default: return data(index, Qt::DisplayRole);
    }
  }
  if (role == kTrendRole && col == kTrend) {
    QVariantList out;
    auto it = trends_.find(b.name());
    if (it != trends_.end()) {
      for (double r : it->second.rates) out << r;
    }
    return out;
  }
  if (role == Qt::ToolTipRole) {
    if (col == kState && b.state() == "ejected") return tr("Ejected until %1").arg(timeOf(b.ejected_until_ms()));
    if (col == kState && b.state() == "cooling_down") return tr("Back from an ejection; its weight is ramping up");
    if (col == kState && b.state() == "backing_off") {
      return tr("It answered busy (429/503); no new requests until %1").arg(timeOf(b.back_off_until_ms()));
    }
    if (col == kMsPerToken) {
      return tr("Latency per output token (exponentially weighted): what latency_weighted balances on");
    }
    if (col == kEjections) {
      return tr("Automatic ejections (outlier detection) / back-offs after 429 or 503, since configured; "
                "%1 failures in a row now").arg(b.consecutive_failures());
    }
    if (col == kWeight) {
      return tr("Effective weight (what the balancer uses now) / %1 weight")
          .arg(b.weight_overridden() ? tr("operator override of the configured %1").arg(b.configured_weight())
                                     : tr("configured"));
    }
    if (col == kInFlight) {
      QString tip = tr("Requests in flight / max_concurrency");
      if (b.reported_running() >= 0) {
        tip += tr("\nThe backend reports %1 running, %2 waiting").arg(b.reported_running()).arg(b.reported_waiting());
        if (b.reported_cache_usage() >= 0) tip += tr(", KV cache %1 % used").arg(b.reported_cache_usage() * 100, 0, 'f', 0);
      }
      return tip;
    }
    if (col == kConnections) return tr("Upstream connections open / idle");
    if (col == kLatency) return tr("Recent mean latency (exponentially weighted, about the last 20 requests)");
    if (col == kLastError && !b.last_error().empty()) {
      return QDateTime::fromMSecsSinceEpoch(b.last_error_ms()).toString(Qt::ISODate) + "  " +
             QString::fromStdString(b.last_error());
    }
  }
  if (role == Qt::ForegroundRole) {
    if (col == kState) {
      if (b.state() == "down" || b.state() == "ejected") return QBrush(QColor(0xd0, 0x30, 0x30));
      if (b.state() == "draining" || b.state() == "cooling_down" || b.state() == "backing_off") {
        return QBrush(QColor(0xc0, 0x80, 0x00));
      }
    }
    if (col == kErrorRate && row.error_rate >= 0.05) return QBrush(QColor(0xd0, 0x30, 0x30));
  }
  if (role == Qt::TextAlignmentRole && col >= kWeight && col <= kConnections) {
    return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);
  }
  return {};
}

QVariant BackendsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  static const char* kNames[] = {"Backend", "State",    "Pools",     "Weight", "In flight", "Req/s",
                                 "Errors",  "Latency",  "ms/token",  "Ejections / back-offs", "Conns",
                                 "Trend",   "Last error", "URL"};
  static_assert(std::size(kNames) == kColumnCount);
  return section >= 0 && section < kColumnCount ? QString(kNames[section]) : QVariant();
}

}  // namespace spillway::ui
