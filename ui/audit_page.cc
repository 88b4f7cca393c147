#include "ui/audit_page.h"

#include <QDateTime>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTableView>
#include <QTextStream>
#include <QVBoxLayout>

#include "ui/text.h"

namespace spillway::ui {

namespace {

QString csvField(const QString& v) {
  if (!v.contains(',') && !v.contains('"') && !v.contains('\n')) return v;
  QString q = v;
  q.replace('"', "\"\"");
  return '"' + q + '"';
}
}  // namespace

AuditPage::AuditPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), model_(new QStandardItemModel(0, 6, this)),
      proxy_(new QSortFilterProxyModel(this)), view_(new QTableView(this)), filter_(new QLineEdit(this)) {
  model_->setHorizontalHeaderLabels({tr("When"), tr("Who"), tr("Action"), tr("Target"), tr("Outcome"), tr("Detail")});
  proxy_->setSourceModel(model_);
  proxy_->setFilterKeyColumn(-1);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  view_->setModel(proxy_);
  view_->setSortingEnabled(true);
  view_->horizontalHeader()->setStretchLastSection(true);
  view_->verticalHeader()->hide();
  view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  filter_->setPlaceholderText(tr("Filter (actor, action, target, outcome…)"));
  filter_->setClearButtonEnabled(true);
  connect(filter_, &QLineEdit::textChanged, proxy_, &QSortFilterProxyModel::setFilterFixedString);
  auto* refresh = new QPushButton(tr("Refresh"), this);
  auto* exportButton = new QPushButton(tr("Export CSV…"), this);
  connect(refresh, &QPushButton::clicked, this, &AuditPage::reload);
  connect(exportButton, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export audit log"), "audit.csv", "CSV (*.csv)");
    if (path.isEmpty()) return;
    emit message(exportCsv(path) ? tr("Exported to %1").arg(path) : tr("Could not write %1").arg(path));
  });
  auto* top = new QHBoxLayout;
  top->addWidget(filter_, 1);
  top->addWidget(refresh);
  top->addWidget(exportButton);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(view_, 1);
}

void AuditPage::showEvent(QShowEvent* event) {
  reload();
  QWidget::showEvent(event);
}

void AuditPage::reload() {
  v1::ListAuditEventsRequest req;
  req.set_limit(1000);
  auto list = client_.listAuditEvents(req);
  if (!list.ok()) {
    emit message(tr("Cannot read the audit log: %1").arg(qs(list.status().message())));
    return;
  }
  model_->removeRows(0, model_->rowCount());
  for (const auto& e : list->events()) {
    QList<QStandardItem*> row;
    row << new QStandardItem(QDateTime::fromMSecsSinceEpoch(e.ts_ms()).toString("yyyy-MM-dd HH:mm:ss"))
        << new QStandardItem(qs(e.actor())) << new QStandardItem(qs(e.action())) << new QStandardItem(qs(e.target()))
        << new QStandardItem(qs(e.outcome())) << new QStandardItem(qs(e.detail()));
    model_->appendRow(row);
  }
}

bool AuditPage::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  QTextStream out(&f);
  QStringList header;
  for (int c = 0; c < model_->columnCount(); ++c) header << csvField(model_->headerData(c, Qt::Horizontal).toString());
  out << header.join(',') << "\r\n";
  for (int r = 0; r < proxy_->rowCount(); ++r) {
    QStringList cells;
    for (int c = 0; c < proxy_->columnCount(); ++c) cells << csvField(proxy_->index(r, c).data().toString());
    out << cells.join(',') << "\r\n";
  }
  return out.status() == QTextStream::Ok;
}

}  // namespace spillway::ui
