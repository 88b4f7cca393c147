#include "ui/backends_page.h"

#include <QAction>
#include <QDateTime>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLineEdit>
#include <QMenu>
#include <QMessageBox>
#include <QPainter>
#include <QPainterPath>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/text.h"

namespace spillway::ui {

namespace {

// Draws a row's requests/s trend as a line scaled to its own maximum.
class SparklineDelegate final : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;

  void paint(QPainter* p, const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    QStyledItemDelegate::paint(p, option, index);  // background and selection
    const QVariantList values = index.data(BackendsModel::kTrendRole).toList();
    if (values.size() < 2) return;
    double max = 0;
    for (const auto& v : values) max = std::max(max, v.toDouble());
    const QRectF r = QRectF(option.rect).adjusted(3, 4, -3, -4);
    const double step = r.width() / (BackendsModel::kTrendPoints - 1);
    QPainterPath path;
    const double x0 = r.right() - step * static_cast<double>(values.size() - 1);
    for (qsizetype i = 0; i < values.size(); ++i) {
      const double y = max > 0 ? r.bottom() - r.height() * values[i].toDouble() / max : r.bottom();
      const QPointF pt(x0 + step * static_cast<double>(i), y);
      if (i == 0) path.moveTo(pt);
      else path.lineTo(pt);
    }
    p->save();
    p->setRenderHint(QPainter::Antialiasing);
    const bool selected = option.state & QStyle::State_Selected;
    p->setPen(QPen(selected ? option.palette.highlightedText().color() : option.palette.link().color(), 1.5));
    p->drawPath(path);
    p->restore();
  }

  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    return {120, QStyledItemDelegate::sizeHint(option, index).height()};
  }
};

}  // namespace

BackendsPage::BackendsPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), model_(new BackendsModel(this)), proxy_(new QSortFilterProxyModel(this)),
      view_(new QTableView(this)), filter_(new QLineEdit(this)), balancing_(new BalancingPanel(client, this)) {
  proxy_->setSourceModel(model_);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  proxy_->setFilterKeyColumn(-1);
  proxy_->setSortRole(Qt::UserRole);
  view_->setModel(proxy_);
  view_->setSortingEnabled(true);
  view_->sortByColumn(BackendsModel::kName, Qt::AscendingOrder);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->setItemDelegateForColumn(BackendsModel::kTrend, new SparklineDelegate(view_));
  auto* header = view_->horizontalHeader();
  header->setSectionResizeMode(QHeaderView::ResizeToContents);
  header->setSectionResizeMode(BackendsModel::kTrend, QHeaderView::Fixed);
  header->resizeSection(BackendsModel::kTrend, 120);
  header->setSectionResizeMode(BackendsModel::kLastError, QHeaderView::Interactive);
  header->resizeSection(BackendsModel::kLastError, 240);
  header->setStretchLastSection(true);
  view_->verticalHeader()->hide();
  view_->setContextMenuPolicy(Qt::ActionsContextMenu);
  filter_->setPlaceholderText(tr("Filter backends (name, state, pool, URL)"));
  filter_->setClearButtonEnabled(true);
  connect(filter_, &QLineEdit::textChanged, proxy_, &QSortFilterProxyModel::setFilterFixedString);

  auto* top = new QHBoxLayout;
  top->addWidget(filter_, 1);
  struct Spec {
    QString text, tip;
    QKeySequence key;
    void (BackendsPage::*slot)();
  };
  const Spec specs[] = {
      {tr("&Drain"), tr("No new requests to the selected backend; those in flight finish"), QKeySequence("Ctrl+D"),
       &BackendsPage::drainSelected},
      {tr("&Undrain"), tr("Put a drained backend back in rotation"), QKeySequence("Ctrl+U"),
       &BackendsPage::undrainSelected},
      {tr("&Eject…"), tr("Out of rotation for a while, then back with a slow start"), QKeySequence("Ctrl+E"),
       &BackendsPage::ejectSelected},
      {tr("&Readmit"), tr("End an ejection now (with the slow start)"), QKeySequence("Ctrl+R"),
       &BackendsPage::readmitSelected},
      {tr("&Weight…"), tr("Override the balancing weight (0 takes it out of rotation)"), QKeySequence("Ctrl+Shift+W"),
       &BackendsPage::changeWeightOfSelected},
      {tr("Reset weight"), tr("Back to the configured weight"), QKeySequence(), &BackendsPage::resetWeightOfSelected},
  };
  for (const auto& s : specs) {
    auto* a = new QAction(s.text, this);
    a->setToolTip(s.tip);
    a->setShortcut(s.key);
    a->setShortcutContext(Qt::WidgetWithChildrenShortcut);
    connect(a, &QAction::triggered, this, s.slot);
    addAction(a);
    view_->addAction(a);
    auto* button = new QToolButton(this);
    button->setDefaultAction(a);
    button->setToolButtonStyle(Qt::ToolButtonTextOnly);
    top->addWidget(button);
  }
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(view_);
  split->addWidget(balancing_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(split, 1);
  connect(balancing_, &BalancingPanel::message, this, &BackendsPage::message);

  confirm_ = [this](const QString& question) {
    return QMessageBox::question(this, tr("Confirm"), question) == QMessageBox::Yes;
  };
  ask_ = [this](const QString& label, int value, int min, int max) -> std::optional<int> {
    bool ok = false;
    const int v = QInputDialog::getInt(this, tr("Backend"), label, value, min, max, 1, &ok);
    return ok ? std::optional<int>(v) : std::nullopt;
  };
}

void BackendsPage::showSnapshot(const v1::MetricsSnapshot& snapshot) {
  last_ts_ms_ = snapshot.ts_ms();
  model_->update(snapshot.backends(), snapshot.ts_ms());
  balancing_->showSnapshot(snapshot);
}

bool BackendsPage::select(const QString& backend) {
  for (int r = 0; r < proxy_->rowCount(); ++r) {
    if (proxy_->index(r, BackendsModel::kName).data(Qt::DisplayRole).toString() == backend) {
      view_->selectRow(r);
      return true;
    }
  }
  return false;
}

QString BackendsPage::selected() {
  const auto rows = view_->selectionModel()->selectedRows();
  if (rows.isEmpty()) {
    emit message(tr("Select a backend first."));
    return {};
  }
  return model_->nameAt(proxy_->mapToSource(rows.first()).row());
}

void BackendsPage::act(const QString& question, const QString& done,
                       const std::function<absl::StatusOr<v1::BackendList>()>& call) {
  if (!confirm_(question)) return;
  auto r = call();
  if (!r.ok()) {
    emit message(tr("Failed: %1").arg(qs(r.status().message())));
    return;
  }
  model_->update(r->backends(), QDateTime::currentMSecsSinceEpoch());
  emit message(done);
}

void BackendsPage::drainSelected() {
  const QString name = selected();
  if (name.isEmpty()) return;
  act(tr("Drain %1? It gets no new requests; those in flight finish.").arg(name), tr("%1 drained.").arg(name),
      [&] { return client_.setBackendDrained(name.toStdString(), true); });
}

void BackendsPage::undrainSelected() {
  const QString name = selected();
  if (name.isEmpty()) return;
  act(tr("Put %1 back in rotation?").arg(name), tr("%1 back in rotation.").arg(name),
      [&] { return client_.setBackendDrained(name.toStdString(), false); });
}

void BackendsPage::ejectSelected() {
  const QString name = selected();
  if (name.isEmpty()) return;
  auto seconds = ask_(tr("Eject %1 for how many seconds?").arg(name), 30, 1, 86400);
  if (!seconds) return;
  v1::EjectBackendRequest req;
  req.set_name(name.toStdString());
  req.set_duration_ms(static_cast<uint32_t>(*seconds) * 1000);
  act(tr("Eject %1 for %2 s? It gets no new requests until then, and returns with a slow start.").arg(name).arg(*seconds),
      tr("%1 ejected for %2 s.").arg(name).arg(*seconds), [&] { return client_.ejectBackend(req); });
}

void BackendsPage::readmitSelected() {
  const QString name = selected();
  if (name.isEmpty()) return;
  v1::EjectBackendRequest req;
  req.set_name(name.toStdString());
  act(tr("Readmit %1 now (with a slow start)?").arg(name), tr("%1 readmitted.").arg(name),
      [&] { return client_.ejectBackend(req); });
}

void BackendsPage::changeWeightOfSelected() {
  const QString name = selected();
  if (name.isEmpty()) return;
  const auto rows = view_->selectionModel()->selectedRows();
  const v1::BackendState* state = model_->stateAt(proxy_->mapToSource(rows.first()).row());
  const int current = state ? static_cast<int>(state->weight_overridden() ? state->weight_override()
                                                                          : state->configured_weight())
                            : 1;
  auto weight = ask_(tr("New weight for %1 (0 takes it out of rotation):").arg(name), current, 0, 10000);
  if (!weight) return;
  v1::SetBackendWeightRequest req;
  req.set_name(name.toStdString());
  req.set_weight(static_cast<uint32_t>(*weight));
  act(tr("Set the weight of %1 to %2 (was %3)?").arg(name).arg(*weight).arg(current),
      tr("%1 now has weight %2.").arg(name).arg(*weight), [&] { return client_.setBackendWeight(req); });
}

void BackendsPage::resetWeightOfSelected() {
  const QString name = selected();
  if (name.isEmpty()) return;
  v1::SetBackendWeightRequest req;
  req.set_name(name.toStdString());
  req.set_clear(true);
  act(tr("Reset %1 to its configured weight?").arg(name), tr("%1 back to its configured weight.").arg(name),
      [&] { return client_.setBackendWeight(req); });
}

}  // namespace spillway::ui
