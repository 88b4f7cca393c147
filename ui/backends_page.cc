#include "ui/backends_page.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

namespace spillway::ui {

BackendsPage::BackendsPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), model_(new BackendsModel(this)), proxy_(new QSortFilterProxyModel(this)),
      view_(new QTableView(this)), filter_(new QLineEdit(this)) {
  proxy_->setSourceModel(model_);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  proxy_->setFilterKeyColumn(-1);
  proxy_->setSortRole(Qt::UserRole);
  view_->setModel(proxy_);
  view_->setSortingEnabled(true);
  view_->sortByColumn(BackendsModel::kName, Qt::AscendingOrder);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->horizontalHeader()->setStretchLastSection(true);
  view_->verticalHeader()->hide();
  filter_->setPlaceholderText(tr("Filter backends (name, state, URL)"));
  filter_->setClearButtonEnabled(true);
  connect(filter_, &QLineEdit::textChanged, proxy_, &QSortFilterProxyModel::setFilterFixedString);

  auto* drain = new QPushButton(tr("&Drain"), this);
  auto* undrain = new QPushButton(tr("&Undrain"), this);
  drain->setToolTip(tr("Stop sending new requests to the selected backend; requests in flight finish"));
  connect(drain, &QPushButton::clicked, this, &BackendsPage::drainSelected);
  connect(undrain, &QPushButton::clicked, this, &BackendsPage::undrainSelected);

  auto* top = new QHBoxLayout;
  top->addWidget(filter_, 1);
  top->addWidget(drain);
  top->addWidget(undrain);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(view_, 1);

  confirm_ = [this](const QString& question) {
    return QMessageBox::question(this, tr("Confirm"), question) == QMessageBox::Yes;
  };
}

void BackendsPage::showSnapshot(const v1::MetricsSnapshot& snapshot) { model_->update(snapshot.backends()); }

bool BackendsPage::select(const QString& backend) {
  for (int r = 0; r < proxy_->rowCount(); ++r) {
    if (proxy_->index(r, BackendsModel::kName).data().toString() == backend) {
      view_->selectRow(r);
      return true;
    }
  }
  return false;
}

void BackendsPage::drainSelected() { setDrained(true); }
void BackendsPage::undrainSelected() { setDrained(false); }

void BackendsPage::setDrained(bool drained) {
  const auto rows = view_->selectionModel()->selectedRows();
  if (rows.isEmpty()) {
    emit message(tr("Select a backend first."));
    return;
  }
  const QString name = model_->nameAt(proxy_->mapToSource(rows.first()).row());
  const QString question = drained ? tr("Drain %1? It gets no new requests; those in flight finish.").arg(name)
                                   : tr("Put %1 back in rotation?").arg(name);
  if (!confirm_(question)) return;
  auto r = client_.setBackendDrained(name.toStdString(), drained);
  if (!r.ok()) {
    emit message(tr("Failed: %1").arg(QString::fromStdString(std::string(r.status().message()))));
    return;
  }
  model_->update(r->backends());
  emit message(drained ? tr("%1 drained.").arg(name) : tr("%1 back in rotation.").arg(name));
}

}  // namespace spillway::ui
