#include "ui/usage_page.h"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QDateTime>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QHorizontalBarSeries>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QTableWidget>
#include <QTimer>
#include <QValueAxis>
#include <QVBoxLayout>
#include <algorithm>
#include <map>

#include "ui/page_widgets.h"
#include "ui/text.h"

namespace spillway::ui {

namespace {

constexpr int kChartTenants = 8;

struct TenantTotals {
  QString name;
  int64_t requests = 0, prompt = 0, completion = 0, shed = 0, hits = 0;
  QStringList models;  // "model (requests)", most first
};

QString share(int64_t part, int64_t whole) {
  return whole ? QString::number(100.0 * static_cast<double>(part) / static_cast<double>(whole), 'f', 1) + " %"
               : QStringLiteral("–");
}

}  // namespace

UsagePage::UsagePage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), range_(new QComboBox(this)), summary_(new QLabel(this)),
      tenants_(liveTable({tr("Tenant"), tr("Requests"), tr("Of fleet"), tr("Prompt tokens"), tr("Completion tokens"),
                          tr("Cache hits"), tr("Shed"), tr("Of sheds"), tr("Models")},
                         this)),
      events_(liveTable({tr("When"), tr("Tenant"), tr("Model"), tr("Route"), tr("Status"), tr("Reason"),
                         tr("Backend"), tr("Trace id")},
                        this)),
      chart_(new QChart), request_share_(new QBarSet(tr("Share of requests"))),
      shed_share_(new QBarSet(tr("Share of sheds"))), names_(new QBarCategoryAxis), timer_(new QTimer(this)) {
  range_->addItem(tr("Last hour"), 3600);
  range_->addItem(tr("Last 24 hours"), 86400);
  range_->addItem(tr("Last 7 days"), 7 * 86400);
  connect(range_, &QComboBox::currentIndexChanged, this, &UsagePage::reload);
  for (QTableWidget* t : {tenants_, events_}) {
    t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    t->horizontalHeader()->setStretchLastSection(true);
  }
  auto* refresh = new QPushButton(tr("Refresh"), this);
  connect(refresh, &QPushButton::clicked, this, &UsagePage::reload);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Range:"), this));
  top->addWidget(range_);
  top->addWidget(summary_, 1);
  top->addWidget(refresh);

  auto* series = new QHorizontalBarSeries;
  series->append(request_share_);
  series->append(shed_share_);
  chart_->addSeries(series);
  chart_->setTitle(tr("Top tenants: share of requests and of sheds"));
  chart_->addAxis(names_, Qt::AlignLeft);
  series->attachAxis(names_);
  auto* percent = new QValueAxis;
  percent->setRange(0, 100);
  percent->setLabelFormat("%d %%");
  chart_->addAxis(percent, Qt::AlignBottom);
  series->attachAxis(percent);
  chart_->legend()->setAlignment(Qt::AlignBottom);
  auto* view = new QChartView(chart_, this);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumHeight(220);

  auto* tenant_box = new QGroupBox(tr("Tenants (API key name; \"other\" without a known key)"), this);
  auto* tv = new QVBoxLayout(tenant_box);
  tv->addWidget(tenants_);
  auto* event_box = new QGroupBox(tr("Recent refused, failed and degraded requests"), this);
  auto* ev = new QVBoxLayout(event_box);
  ev->addWidget(events_);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(view, 2);
  layout->addWidget(tenant_box, 2);
  layout->addWidget(event_box, 2);

  timer_->setInterval(5000);
  connect(timer_, &QTimer::timeout, this, &UsagePage::reload);
}

void UsagePage::showEvent(QShowEvent* event) {
  reload();
  timer_->start();
  QWidget::showEvent(event);
}

void UsagePage::hideEvent(QHideEvent* event) {
  timer_->stop();
  QWidget::hideEvent(event);
}

void UsagePage::reload() {
  v1::GetUsageRequest req;
  const int64_t now = QDateTime::currentMSecsSinceEpoch();
  req.set_until_ms(now);
  req.set_since_ms(now - int64_t{range_->currentData().toInt()} * 1000);
  req.set_events_limit(200);
  auto report = client_.getUsage(req);
  if (!report.ok()) {
    emit message(tr("Cannot read usage: %1").arg(qs(report.status().message())));
    return;
  }
  show(*report);
}

void UsagePage::show(const v1::UsageReport& report) {
  // Rows come per tenant × model, most requests first: fold them per tenant.
  std::map<QString, TenantTotals> by_tenant;
  int64_t requests = 0, shed = 0, hits = 0;
  for (const auto& r : report.rows()) {
    auto& t = by_tenant[qs(r.tenant())];
    t.name = qs(r.tenant());
    t.requests += r.requests();
    t.prompt += r.prompt_tokens();
    t.completion += r.completion_tokens();
    t.shed += r.shed();
    t.hits += r.cache_hits();
    t.models << QStringLiteral("%1 (%2)").arg(qs(r.model())).arg(r.requests());
    requests += r.requests();
    shed += r.shed();
    hits += r.cache_hits();
  }
  std::vector<TenantTotals> ranked;
  for (auto& [name, t] : by_tenant) ranked.push_back(std::move(t));
  std::stable_sort(ranked.begin(), ranked.end(), [](const TenantTotals& a, const TenantTotals& b) {
    return a.requests + a.shed > b.requests + b.shed;
  });

  const QLocale locale;
  summary_->setText(tr("%1 requests from %2 %3 · %4 shed (%5) · %6 cache hits")
                        .arg(locale.toString(static_cast<qlonglong>(requests)))
                        .arg(ranked.size())
                        .arg(ranked.size() == 1 ? tr("tenant") : tr("tenants"))
                        .arg(locale.toString(static_cast<qlonglong>(shed)))
                        .arg(share(shed, requests))
                        .arg(locale.toString(static_cast<qlonglong>(hits))));

  tenants_->setRowCount(static_cast<int>(ranked.size()));
  for (size_t i = 0; i < ranked.size(); ++i) {
    const auto& t = ranked[i];
    setRow(tenants_, static_cast<int>(i),
           {t.name, locale.toString(static_cast<qlonglong>(t.requests)), share(t.requests, requests),
            locale.toString(static_cast<qlonglong>(t.prompt)), locale.toString(static_cast<qlonglong>(t.completion)),
            locale.toString(static_cast<qlonglong>(t.hits)), locale.toString(static_cast<qlonglong>(t.shed)),
            share(t.shed, shed), t.models.join(", ")});
  }

  // The chart: the top tenants, the first at the top.
  QStringList names;
  QList<double> req_shares, shed_shares;
  const int shown = std::min<int>(kChartTenants, static_cast<int>(ranked.size()));
  for (int i = shown - 1; i >= 0; --i) {
    names << ranked[i].name;
    req_shares << (requests ? 100.0 * static_cast<double>(ranked[i].requests) / static_cast<double>(requests) : 0);
    shed_shares << (shed ? 100.0 * static_cast<double>(ranked[i].shed) / static_cast<double>(shed) : 0);
  }
  names_->setCategories(names);
  request_share_->remove(0, request_share_->count());
  shed_share_->remove(0, shed_share_->count());
  request_share_->append(req_shares);
  shed_share_->append(shed_shares);

  events_->setRowCount(report.events_size());
  for (int i = 0; i < report.events_size(); ++i) {
    const auto& e = report.events(i);
    setRow(events_, i,
           {QDateTime::fromMSecsSinceEpoch(e.ts_ms()).toString("yyyy-MM-dd HH:mm:ss"), qs(e.tenant()), qs(e.model()),
            qs(e.route()), QString::number(e.status()),
            e.degraded() ? tr("%1 (level %2)").arg(qs(e.reason())).arg(e.degraded()) : qs(e.reason()),
            e.backend().empty() ? QStringLiteral("–") : qs(e.backend()), qs(e.trace_id())});
  }
}

QString UsagePage::summaryText() const { return summary_->text(); }

QStringList UsagePage::chartTenants() const { return names_->categories(); }

QList<double> UsagePage::requestShares() const {
  QList<double> out;
  for (int i = 0; i < request_share_->count(); ++i) out << request_share_->at(i);
  return out;
}

QList<double> UsagePage::shedShares() const {
  QList<double> out;
  for (int i = 0; i < shed_share_->count(); ++i) out << shed_share_->at(i);
  return out;
}

}  // namespace spillway::ui
