#include "ui/balancing_panel.h"

#include "control/pool_policy.h"

#include <QComboBox>
#include <QDateTime>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QMessageBox>
#include <QTableWidget>
#include <QVBoxLayout>

namespace spillway::ui {

namespace {

enum PoolColumn { kPool, kPolicy, kActive, kRetrying, kScores, kPoolColumns };

QString timeOf(int64_t ms) { return QDateTime::fromMSecsSinceEpoch(ms).toString("HH:mm:ss"); }

QTableWidget* makeTable(QWidget* parent, const QStringList& headers) {
  auto* t = new QTableWidget(0, static_cast<int>(headers.size()), parent);
  t->setHorizontalHeaderLabels(headers);
  t->verticalHeader()->hide();
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  t->horizontalHeader()->setStretchLastSection(true);
  return t;
}

void setText(QTableWidget* t, int row, int col, const QString& text, const QString& tip = {}) {
  auto* item = t->item(row, col);
  if (!item) {
    item = new QTableWidgetItem;
    t->setItem(row, col, item);
  }
  if (item->text() != text) item->setText(text);
  if (!tip.isEmpty()) item->setToolTip(tip);
}

}  // namespace

QStringList BalancingPanel::policies() {
  return {"least_outstanding", "round_robin",     "weighted_random",
          "latency_weighted",  "consistent_hash", "prefix_affinity"};
}

BalancingPanel::BalancingPanel(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client),
      pools_(makeTable(this, {tr("Pool"), tr("Policy"), tr("Active"), tr("Retrying"), tr("Score per backend")})),
      events_(makeTable(this, {tr("Time"), tr("Backend"), tr("Event"), tr("Until"), tr("Reason")})) {
  pools_->setToolTip(tr("Each pool's balancing policy and the score it gives each backend now "
                        "(latency_weighted: its dynamic weight; least_outstanding: weight / (in flight + 1))"));
  events_->setToolTip(tr("Backends taken out of rotation without an operator: ejected by outlier detection, "
                         "or backing off after answering 429/503"));
  auto* pools_box = new QGroupBox(tr("Pools and balancing"), this);
  (new QVBoxLayout(pools_box))->addWidget(pools_);
  auto* events_box = new QGroupBox(tr("Ejections and back-offs"), this);
  (new QVBoxLayout(events_box))->addWidget(events_);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(pools_box, 1);
  layout->addWidget(events_box, 1);
  confirm_ = [this](const QString& question) {
    return QMessageBox::question(this, tr("Confirm"), question) == QMessageBox::Yes;
  };
}

void BalancingPanel::showSnapshot(const v1::MetricsSnapshot& snapshot) {
  showPools(snapshot.pools());
  showEvents(snapshot.events());
}

void BalancingPanel::showPools(const google::protobuf::RepeatedPtrField<v1::PoolState>& pools) {
  if (pools_->rowCount() != pools.size()) pools_->setRowCount(pools.size());
  for (int row = 0; row < pools.size(); ++row) {
    const auto& p = pools[row];
    const QString model = QString::fromStdString(p.model());
    setText(pools_, row, kPool, model);
    auto* combo = qobject_cast<QComboBox*>(pools_->cellWidget(row, kPolicy));
    if (!combo || combo->property("model").toString() != model) {
      combo = new QComboBox(pools_);
      combo->addItems(policies());
      combo->setProperty("model", model);
      combo->setToolTip(tr("Switch the pool's balancing policy (a config change, audited and undoable)"));
      pools_->setCellWidget(row, kPolicy, combo);
      connect(combo, &QComboBox::activated, this, [this, combo] {
        const QString model = combo->property("model").toString();
        const QString running = combo->property("running").toString();
        if (combo->currentText() == running) return;
        if (switchPolicy(model, combo->currentText())) {
          combo->setProperty("running", combo->currentText());
        } else {
          combo->setCurrentText(running);
        }
      });
    }
    const QString policy = QString::fromStdString(p.policy());
    combo->setProperty("running", policy);
    if (combo->currentText() != policy && !combo->view()->isVisible()) {
      const QSignalBlocker block(combo);
      combo->setCurrentText(policy);
    }
    setText(pools_, row, kActive, QString::number(p.active_requests()));
    setText(pools_, row, kRetrying, QString::number(p.retries_in_progress()));
    QStringList scores;
    for (int i = 0; i < p.backends_size(); ++i) {
      scores << QString("%1 %2").arg(QString::fromStdString(p.backends(i))).arg(i < p.scores_size() ? p.scores(i) : 0.0, 0, 'g', 3);
    }
    setText(pools_, row, kScores, scores.join("  ·  "));
  }
}

void BalancingPanel::showEvents(const google::protobuf::RepeatedPtrField<v1::BackendEvent>& events) {
  // Newest first; the list only grows (bounded) so a changed count or a
  // changed newest entry means there is something new to show.
  const bool same = events_->rowCount() == events.size() &&
                    (events.empty() || events_->item(0, 0)->data(Qt::UserRole).toLongLong() == events.rbegin()->ts_ms());
  if (same) return;
  events_->setRowCount(events.size());
  int row = 0;
  for (auto it = events.rbegin(); it != events.rend(); ++it, ++row) {
    setText(events_, row, 0, timeOf(it->ts_ms()));
    events_->item(row, 0)->setData(Qt::UserRole, static_cast<qlonglong>(it->ts_ms()));
    setText(events_, row, 1, QString::fromStdString(it->backend()));
    setText(events_, row, 2, QString::fromStdString(it->kind()).replace('_', ' '));
    setText(events_, row, 3, timeOf(it->until_ms()));
    setText(events_, row, 4, QString::fromStdString(it->reason()), QString::fromStdString(it->reason()));
  }
}

bool BalancingPanel::switchPolicy(const QString& model, const QString& policy) {
  auto change = control::poolPolicyChange(client_, model.toStdString(), policy.toStdString());
  if (!change.ok()) {
    emit message(tr("Switching %1 failed: %2").arg(model, QString::fromStdString(std::string(change.status().message()))));
    return false;
  }
  v1::ApplyConfigRequest& req = *change;
  // Validated and diffed first (a dry run); the operator confirms the diff.
  req.set_dry_run(true);
  auto dry = client_.applyConfig(req);
  if (!dry.ok()) {
    emit message(tr("Switching %1 refused: %2").arg(model, QString::fromStdString(std::string(dry.status().message()))));
    return false;
  }
  QStringList diff;
  for (const auto& line : dry->diff()) diff << QString::fromStdString(line);
  if (!confirm_(tr("Switch pool %1 to %2? This applies a new config version (undo it with a rollback from the "
                   "Policies page's history):\n\n%3")
                    .arg(model, policy, diff.join("\n")))) {
    return false;
  }
  req.set_dry_run(false);
  auto applied = client_.applyConfig(req);
  if (!applied.ok()) {
    emit message(tr("Switching %1 failed: %2").arg(model, QString::fromStdString(std::string(applied.status().message()))));
    return false;
  }
  emit message(tr("Pool %1 now balances with %2 (config v%3)").arg(model, policy).arg(applied->version()));
  return true;
}

}  // namespace spillway::ui
