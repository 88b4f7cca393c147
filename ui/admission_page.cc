#include "ui/admission_page.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineSeries>
#include <QMessageBox>
#include <QPushButton>
#include <QTableWidget>
#include <QValueAxis>
#include <QVBoxLayout>

#include "ui/page_widgets.h"
#include "ui/text.h"

namespace spillway::ui {

namespace {

const char* kClasses[] = {"critical", "standard", "sheddable"};

}  // namespace

AdmissionPage::AdmissionPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), banner_(new QLabel(this)) {
  confirm_ = [this](const QString& question) {
    return QMessageBox::question(this, tr("Confirm"), question) == QMessageBox::Yes;
  };
  auto* v = new QVBoxLayout(this);
  banner_->setObjectName("admission-banner");
  banner_->setWordWrap(true);
  banner_->setStyleSheet("QLabel { background: #b3261e; color: white; padding: 6px; border-radius: 4px; }");
  banner_->hide();
  v->addWidget(banner_);

  auto* charts = new QHBoxLayout;
  depth_chart_ = liveChart(tr("Queued requests by class"), tr("requests"), &depth_x_, &depth_y_);
  for (int c = 0; c < 3; ++c) {
    depth_[c] = new LiveSeries(kClasses[c]);
    depth_chart_->addSeries(depth_[c]);
    depth_[c]->attachAxis(depth_x_);
    depth_[c]->attachAxis(depth_y_);
  }
  wait_chart_ = liveChart(tr("Oldest queued request by pool"), tr("seconds"), &wait_x_, &wait_y_);
  for (QChart* c : {depth_chart_, wait_chart_}) {
    auto* view = new QChartView(c, this);
    view->setRenderHint(QPainter::Antialiasing);
    view->setMinimumHeight(190);
    charts->addWidget(view);
  }
  v->addLayout(charts);

  v->addWidget(new QLabel(tr("<b>Pools</b> — the gateway queue and degradation level of each model"), this));
  pools_ = liveTable({tr("Pool"), tr("Critical"), tr("Standard"), tr("Sheddable"), tr("Served/s"), tr("Oldest wait"),
                  tr("Level"), tr("Shed by reason")},
                 this);
  pools_->setObjectName("admission-pools");
  v->addWidget(pools_, 2);
  auto* pin = new QHBoxLayout;
  pin->addWidget(new QLabel(tr("Degradation level of the selected pool:"), this));
  level_ = new QComboBox(this);
  level_->setObjectName("degradation-level");
  level_->addItem(tr("automatic"), -1);
  level_->addItem(tr("0 — normal"), 0);
  level_->addItem(tr("1 — default answers"), 1);
  level_->addItem(tr("2 — shorter answers / fallback model"), 2);
  level_->addItem(tr("3 — emergency: busy page"), 3);
  auto* apply = new QPushButton(tr("Pin"), this);
  apply->setObjectName("degradation-apply");
  apply->setToolTip(tr("Pins the level for the selected pool (automatic releases the pin); audited"));
  connect(apply, &QPushButton::clicked, this, &AdmissionPage::applyLevel);
  pin->addWidget(level_);
  pin->addWidget(apply);
  pin->addStretch(1);
  v->addLayout(pin);

  v->addWidget(new QLabel(tr("<b>Latency objectives</b> — per class: the objective, what a request arriving now "
                             "would wait, and the share answered in full inside it"),
                          this));
  objectives_ = liveTable({tr("Pool"), tr("Class"), tr("Objective"), tr("Predicted wait"), tr("Attainment"),
                           tr("Requests"), tr("Service time (stream / whole)")},
                          this);
  objectives_->setObjectName("admission-objectives");
  v->addWidget(objectives_, 2);

  auto* lower = new QGridLayout;
  lower->addWidget(new QLabel(tr("<b>Backend limits</b> — learned or configured, against requests in flight"), this), 0, 0);
  limits_ = liveTable({tr("Backend"), tr("Limit"), tr("In flight"), tr("Source"), tr("Unloaded wait")}, this);
  limits_->setObjectName("admission-limits");
  lower->addWidget(limits_, 1, 0);
  lower->addWidget(new QLabel(tr("<b>Top tenants</b> — tokens served (fairness counters) and 429s"), this), 0, 1);
  tenants_ = liveTable({tr("Pool"), tr("Tenant"), tr("Virtual tokens"), tr("Turned away")}, this);
  tenants_->setObjectName("admission-tenants");
  lower->addWidget(tenants_, 1, 1);
  lower->addWidget(new QLabel(tr("<b>Rate limits</b> — scopes nearest their limit"), this), 0, 2);
  rate_limits_ = liveTable({tr("Scope"), tr("Requests left"), tr("Tokens left")}, this);
  rate_limits_->setObjectName("admission-rate-limits");
  lower->addWidget(rate_limits_, 1, 2);
  v->addLayout(lower, 2);
}

QString AdmissionPage::bannerText() const { return banner_->isVisible() ? banner_->text() : QString(); }

int AdmissionPage::depthPoints(const QString& cls) const {
  for (int c = 0; c < 3; ++c) {
    if (cls == kClasses[c]) return static_cast<int>(depth_[c]->count());
  }
  return 0;
}

void AdmissionPage::showSnapshot(const v1::MetricsSnapshot& s) {
  if (s.ts_ms() == last_ts_ms_) return;
  last_ts_ms_ = s.ts_ms();
  if (!first_ts_ms_) first_ts_ms_ = s.ts_ms();
  const double x = static_cast<double>(s.ts_ms() - first_ts_ms_) / 1000.0;
  const auto& a = s.admission();
  uint64_t depth[3] = {0, 0, 0};
  for (const auto& p : a.pools()) {
    for (int c = 0; c < p.classes_size() && c < 3; ++c) depth[c] += p.classes(c).depth();
    auto& line = wait_[qs(p.model())];
    if (!line) {
      line = new LiveSeries(qs(p.model()));
      wait_chart_->addSeries(line);
      line->attachAxis(wait_x_);
      line->attachAxis(wait_y_);
    }
    line->push(x, p.oldest_wait_seconds());
  }
  for (int c = 0; c < 3; ++c) depth_[c]->push(x, static_cast<double>(depth[c]));
  fitAxes(depth_x_, depth_y_, {depth_[0], depth_[1], depth_[2]}, x);
  std::vector<LiveSeries*> waits;
  for (auto& [name, line] : wait_) waits.push_back(line);
  fitAxes(wait_x_, wait_y_, waits, x);

  showAdmission(a);

  limits_->setRowCount(s.backends_size());
  for (int i = 0; i < s.backends_size(); ++i) {
    const auto& b = s.backends(i);
    const QString limit = b.concurrency_limit() ? QString::number(b.concurrency_limit()) : tr("none");
    const QString source = !b.concurrency_limit() ? tr("—") : b.limit_learned() ? tr("learned") : tr("max_concurrency");
    const QString baseline = b.limit_learned() && b.limit_baseline_ms() >= 0
                                 ? QString("%1 ms").arg(b.limit_baseline_ms(), 0, 'f', 0)
                                 : tr("—");
    setRow(limits_, i, {qs(b.name()), limit, QString::number(b.in_flight()), source, baseline});
  }
}

void AdmissionPage::showAdmission(const v1::AdmissionState& a) {
  if (!a.enabled()) {
    banner_->setText(tr("Admission control is off (admission.disabled): requests go straight to the backends, and a "
                        "full fleet answers its own 503s."));
    banner_->show();
  } else if (a.redis_configured() && !a.redis_up()) {
    banner_->setText(tr("Shared rate limits: Redis does not answer. Each replica enforces its limits on its own until "
                        "it is back (%1 local decisions so far).")
                         .arg(a.redis_fallbacks_total()));
    banner_->show();
  } else {
    banner_->hide();
  }
  pools_->setRowCount(a.pools_size());
  // Tenants: the union of the top by tokens and the top by 429s, per pool.
  struct TenantRow {
    QString pool, tenant;
    double tokens = 0;
    uint64_t shed = 0;
  };
  std::vector<TenantRow> rows;
  for (const auto& p : a.pools()) {
    std::map<std::string, TenantRow> by;
    for (const auto& tu : p.tenants()) by[tu.tenant()].tokens = tu.virtual_tokens();
    for (const auto& tu : p.shed_tenants()) by[tu.tenant()].shed = tu.shed_total();
    for (auto& [name, r] : by) {
      r.pool = qs(p.model());
      r.tenant = qs(name);
      rows.push_back(r);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const TenantRow& x, const TenantRow& y) {
    return x.tokens != y.tokens ? x.tokens > y.tokens : x.shed > y.shed;
  });
  tenants_->setRowCount(static_cast<int>(rows.size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    setRow(tenants_, static_cast<int>(i), {rows[i].pool, rows[i].tenant, QString::number(rows[i].tokens, 'f', 0),
                                           QString::number(rows[i].shed)});
  }
  for (int i = 0; i < a.pools_size(); ++i) {
    const auto& p = a.pools(i);
    QStringList cells{qs(p.model())};
    for (int c = 0; c < 3; ++c) cells << QString::number(c < p.classes_size() ? p.classes(c).depth() : 0);
    cells << QString::number(p.service_rate(), 'f', 1) << QString("%1 s").arg(p.oldest_wait_seconds(), 0, 'f', 1);
    cells << (p.pinned_level() >= 0 ? tr("%1 (pinned)").arg(p.pinned_level())
                                    : tr("%1 (automatic)").arg(p.degradation_level()));
    QStringList shed;
    std::map<std::string, uint64_t> sorted(p.shed().begin(), p.shed().end());
    for (const auto& [reason, n] : sorted) shed << QString("%1 %2").arg(qs(reason)).arg(n);
    cells << (shed.isEmpty() ? tr("none") : shed.join(", "));
    setRow(pools_, i, cells);
  }
  auto seconds = [](double v) {
    if (std::isinf(v)) return tr("unknown");
    return v < 1 ? tr("%1 ms").arg(v * 1000, 0, 'f', 0) : tr("%1 s").arg(v, 0, 'f', 2);
  };
  auto service = [&](double v) { return v > 0 ? seconds(v) : QStringLiteral("–"); };  // none answered yet
  int row = 0;
  for (const auto& p : a.pools()) row += p.classes_size();
  objectives_->setRowCount(row);
  row = 0;
  for (const auto& p : a.pools()) {
    for (const auto& c : p.classes()) {
      const QString attained = c.objective_total()
                                   ? QString("%1 %").arg(100.0 * static_cast<double>(c.objective_met()) /
                                                             static_cast<double>(c.objective_total()),
                                                         0, 'f', 1)
                                   : QStringLiteral("–");
      setRow(objectives_, row++,
             {qs(p.model()), qs(c.name()), seconds(c.objective_seconds()), seconds(c.predicted_wait_seconds()), attained,
              QString::number(c.objective_total()),
              service(p.service_seconds_stream()) + " / " + service(p.service_seconds_whole())});
    }
  }
  rate_limits_->setRowCount(a.limits_size());
  for (int i = 0; i < a.limits_size(); ++i) {
    const auto& l = a.limits(i);
    auto pair = [](double left, double limit) {
      return limit > 0 ? QString("%1 / %2").arg(left, 0, 'f', 0).arg(limit, 0, 'f', 0) : QString("—");
    };
    setRow(rate_limits_, i, {qs(l.scope()), pair(l.requests_remaining(), l.requests_limit()),
                             pair(l.tokens_remaining(), l.tokens_limit())});
  }
}

void AdmissionPage::applyLevel() {
  const int row = pools_->currentRow();
  if (row < 0 || !pools_->item(row, 0)) {
    emit message(tr("Select a pool first"));
    return;
  }
  const QString pool = pools_->item(row, 0)->text();
  const int level = level_->currentData().toInt();
  const QString question = level < 0 ? tr("Release the degradation pin of %1 (automatic levels again)?").arg(pool)
                                     : tr("Pin %1 at degradation level %2?").arg(pool).arg(level);
  if (!confirm_(question)) return;
  v1::PinDegradationRequest r;
  r.set_model(pool.toStdString());
  r.set_level(level);
  auto a = client_.pinDegradation(r);
  if (!a.ok()) {
    emit message(tr("Degradation of %1 not changed: %2").arg(pool, qs(a.status().message())));
    return;
  }
  showAdmission(*a);
  emit message(level < 0 ? tr("%1: degradation automatic").arg(pool) : tr("%1: degradation pinned at level %2").arg(pool).arg(level));
}

}  // namespace spillway::ui
