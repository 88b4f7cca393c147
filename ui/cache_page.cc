#include "ui/cache_page.h"

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QLocale>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTableWidget>
#include <QValueAxis>
#include <QVBoxLayout>

#include "ui/page_widgets.h"
#include "ui/text.h"

namespace spillway::ui {

namespace {

// Requests (chat, completions, embeddings as a whole) by tier, and
// embedding inputs each on their own (a batch is partly cached).
const char* kRatioLines[] = {"all tiers", "memory", "disk", "redis", "embedding inputs"};
const char* kRateLines[] = {"hits", "misses", "coalesced", "bypassed"};

QString bytes(uint64_t b) { return QLocale().formattedDataSize(static_cast<qint64>(b)); }

}  // namespace

CachePage::CachePage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), banner_(new QLabel(this)), summary_(new QLabel(this)), bloom_(new QLabel(this)) {
  confirm_ = [this](const QString& question) {
    return QMessageBox::question(this, tr("Confirm"), question) == QMessageBox::Yes;
  };
  auto* v = new QVBoxLayout(this);
  banner_->setObjectName("cache-banner");
  banner_->setWordWrap(true);
  banner_->setStyleSheet("QLabel { background: #b3261e; color: white; padding: 6px; border-radius: 4px; }");
  banner_->hide();
  v->addWidget(banner_);
  summary_->setObjectName("cache-summary");
  summary_->setWordWrap(true);
  v->addWidget(summary_);

  auto* charts = new QHBoxLayout;
  ratio_chart_ = liveChart(tr("Hit ratio by tier"), tr("%"), &ratio_x_, &ratio_y_);
  for (int i = 0; i < 5; ++i) {
    ratio_[i] = new LiveSeries(kRatioLines[i]);
    ratio_chart_->addSeries(ratio_[i]);
    ratio_[i]->attachAxis(ratio_x_);
    ratio_[i]->attachAxis(ratio_y_);
  }
  rate_chart_ = liveChart(tr("Requests by outcome"), tr("req/s"), &rate_x_, &rate_y_);
  for (int i = 0; i < 4; ++i) {
    rate_[i] = new LiveSeries(kRateLines[i]);
    rate_chart_->addSeries(rate_[i]);
    rate_[i]->attachAxis(rate_x_);
    rate_[i]->attachAxis(rate_y_);
  }
  for (QChart* c : {ratio_chart_, rate_chart_}) {
    auto* view = new QChartView(c, this);
    view->setRenderHint(QPainter::Antialiasing);
    view->setMinimumHeight(190);
    charts->addWidget(view);
  }
  v->addLayout(charts);

  v->addWidget(new QLabel(tr("<b>Tiers</b> — memory (L1), SQLite on disk (L2), shared Redis (L3)"), this));
  tiers_ = liveTable({tr("Tier"), tr("State"), tr("Entries"), tr("Bytes"), tr("Hits"), tr("Evicted"), tr("Errors"),
                      tr("Skipped"), tr("Where")},
                     this);
  tiers_->setObjectName("cache-tiers");
  tiers_->setMaximumHeight(130);
  v->addWidget(tiers_);
  bloom_->setObjectName("cache-bloom");
  v->addWidget(bloom_);

  auto* lower = new QGridLayout;
  // Lookup: is the answer to this request cached?
  lower->addWidget(new QLabel(tr("<b>Look up</b> — paste a request body"), this), 0, 0);
  lookup_body_ = new QPlainTextEdit(this);
  lookup_body_->setObjectName("cache-lookup-body");
  lookup_body_->setPlaceholderText(
      R"({"model":"spillway-small","temperature":0,"messages":[{"role":"user","content":"Hello!"}]})");
  lower->addWidget(lookup_body_, 1, 0, 3, 1);
  auto* find = new QPushButton(tr("Look up"), this);
  find->setObjectName("cache-lookup");
  connect(find, &QPushButton::clicked, this, &CachePage::lookup);
  lower->addWidget(find, 4, 0, Qt::AlignLeft);
  lookup_result_ = new QLabel(this);
  lookup_result_->setObjectName("cache-lookup-result");
  lookup_result_->setWordWrap(true);
  lookup_result_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  lower->addWidget(lookup_result_, 5, 0);

  // Purge and flush.
  lower->addWidget(new QLabel(tr("<b>Purge</b> — drop entries from every tier (audited)"), this), 0, 1);
  auto* form = new QFormLayout;
  model_ = new QComboBox(this);
  model_->setObjectName("cache-purge-model");
  model_->addItem(tr("any model"), QString());
  form->addRow(tr("Model"), model_);
  tenant_ = new QLineEdit(this);
  tenant_->setObjectName("cache-tenant");
  tenant_->setPlaceholderText(tr("API key name or client address (blank: any)"));
  form->addRow(tr("Tenant"), tenant_);
  lower->addLayout(form, 1, 1);
  auto* buttons = new QHBoxLayout;
  auto* purge = new QPushButton(tr("Purge"), this);
  purge->setObjectName("cache-purge");
  connect(purge, &QPushButton::clicked, this, &CachePage::purge);
  auto* flush = new QPushButton(tr("Flush everything…"), this);
  flush->setObjectName("cache-flush");
  connect(flush, &QPushButton::clicked, this, &CachePage::flush);
  buttons->addWidget(purge);
  buttons->addWidget(flush);
  buttons->addStretch(1);
  lower->addLayout(buttons, 2, 1);
  lower->setRowStretch(3, 1);
  v->addLayout(lower, 1);
}

QString CachePage::lookupResult() const { return lookup_result_->text(); }
QString CachePage::summaryText() const { return summary_->text(); }
QString CachePage::bannerText() const { return banner_->isVisible() ? banner_->text() : QString(); }
int CachePage::hitRatioPoints() const { return static_cast<int>(ratio_[0]->count()); }

void CachePage::showSnapshot(const v1::MetricsSnapshot& s) {
  if (s.ts_ms() == last_ts_ms_) return;
  const auto& c = s.cache();
  // Rates and ratios over the interval since the previous snapshot.
  if (last_ && last_ts_ms_) {
    const double seconds = std::max(0.001, (s.ts_ms() - last_ts_ms_) / 1000.0);
    if (!first_ts_ms_) first_ts_ms_ = last_ts_ms_;
    const double x = (s.ts_ms() - first_ts_ms_) / 1000.0;
    auto d = [](uint64_t now, uint64_t before) { return static_cast<double>(now - std::min(now, before)); };
    const double hits = d(c.hits_total(), last_->hits_total());
    const double misses = d(c.misses_total(), last_->misses_total());
    const double coalesced = d(c.coalesced_total(), last_->coalesced_total());
    const double stale = d(c.stale_total(), last_->stale_total());
    const double bypassed = d(c.bypass_total(), last_->bypass_total());
    const double cacheable = hits + misses + coalesced + stale;
    ratio_[0]->push(x, cacheable > 0 ? 100.0 * hits / cacheable : 0);
    for (int t = 0; t < 3; ++t) {
      const double h = t < c.tiers_size() && t < last_->tiers_size()
                           ? d(c.tiers(t).hits_total(), last_->tiers(t).hits_total())
                           : 0;
      ratio_[t + 1]->push(x, cacheable > 0 ? 100.0 * h / cacheable : 0);
    }
    const double item_hits = d(c.embedding_item_hits_total(), last_->embedding_item_hits_total());
    const double items = item_hits + d(c.embedding_item_misses_total(), last_->embedding_item_misses_total());
    ratio_[4]->push(x, items > 0 ? 100.0 * item_hits / items : 0);
    const double rates[] = {hits, misses, coalesced, bypassed};
    for (int i = 0; i < 4; ++i) rate_[i]->push(x, rates[i] / seconds);
    fitAxes(ratio_x_, ratio_y_, {ratio_[0]}, x, 100 / 1.15);
    fitAxes(rate_x_, rate_y_, {rate_[0], rate_[1], rate_[2], rate_[3]}, x);
  }
  last_ts_ms_ = s.ts_ms();
  last_ = c;
  // The purge box offers the pools' models.
  for (const auto& p : s.pools()) {
    if (model_->findData(qs(p.model())) < 0) model_->addItem(qs(p.model()), qs(p.model()));
  }
  showCache(c);
}

namespace {

// Embeddings are cached per input: how many inputs the cache answered.
QString embeddingItems(const v1::CacheState& c) {
  const uint64_t items = c.embedding_item_hits_total() + c.embedding_item_misses_total();
  if (!items) return {};
  return QObject::tr(" Embedding inputs: %1 from the cache, %2 sent upstream (hit ratio %3 %).")
      .arg(c.embedding_item_hits_total())
      .arg(c.embedding_item_misses_total())
      .arg(100.0 * c.embedding_item_hits_total() / items, 0, 'f', 1);
}

}  // namespace

void CachePage::showCache(const v1::CacheState& c) {
  QString down;
  for (const auto& t : c.tiers()) {
    if (t.enabled() && t.detail().find("(down)") != std::string::npos) down = qs(t.tier());
  }
  if (!c.enabled()) {
    banner_->setText(tr("The response cache is off (cache.disabled): every request reaches a backend."));
    banner_->show();
  } else if (!down.isEmpty()) {
    banner_->setText(tr("The %1 tier does not answer: it is skipped (counted, never waited on) until it is back.").arg(down));
    banner_->show();
  } else {
    banner_->hide();
  }
  const uint64_t cacheable = c.hits_total() + c.misses_total() + c.coalesced_total() + c.stale_total();
  summary_->setText(tr("Mode <b>%1</b>, entries scoped per <b>%2</b>. Since start: %3 hits, %4 misses, %5 coalesced, "
                       "%6 stale, %7 bypassed (hit ratio %8); %9 answers stored; %10 upstream calls shared now.")
                        .arg(qs(c.mode()), qs(c.scope()))
                        .arg(c.hits_total())
                        .arg(c.misses_total())
                        .arg(c.coalesced_total())
                        .arg(c.stale_total())
                        .arg(c.bypass_total())
                        .arg(cacheable ? QString("%1 %").arg(100.0 * c.hits_total() / cacheable, 0, 'f', 1) : tr("—"))
                        .arg(c.stores_total())
                        .arg(c.flights()) +
                    embeddingItems(c));
  tiers_->setRowCount(c.tiers_size());
  for (int i = 0; i < c.tiers_size(); ++i) {
    const auto& t = c.tiers(i);
    setRow(tiers_, i,
           {qs(t.tier()), t.enabled() ? tr("on") : tr("off"), t.tier() == "redis" ? tr("—") : QString::number(t.entries()),
            t.tier() == "redis" ? tr("—") : bytes(t.bytes()), QString::number(t.hits_total()),
            QString::number(t.evictions_total()), QString::number(t.errors_total()), QString::number(t.skipped_total()),
            t.detail().empty() ? tr("—") : qs(t.detail())});
  }
  bloom_->setText(c.bloom_bits()
                      ? tr("Bloom filter over the disk tier's keys: %1, expected false positives %2 %, %3 disk lookups "
                           "avoided.")
                            .arg(bytes(c.bloom_bits() / 8))
                            .arg(100.0 * c.bloom_false_positive_rate(), 0, 'f', 4)
                            .arg(c.bloom_skips_total())
                      : tr("No disk tier, so no Bloom filter (start the engine with a data directory or set "
                           "cache.disk.path)."));
}

void CachePage::lookup() {
  v1::LookupCacheRequest r;
  r.set_body(lookup_body_->toPlainText().toStdString());
  r.set_tenant(tenant_->text().trimmed().toStdString());
  auto l = client_.lookupCache(r);
  if (!l.ok()) {
    lookup_result_->setText(tr("Cannot look it up: %1").arg(qs(l.status().message())));
    return;
  }
  QString text = tr("Key %1 — %2. ").arg(qs(l->key()), l->cacheable() ? tr("cacheable") : tr("not cacheable by default"));
  if (!l->found()) {
    text += tr("Not cached.");
  } else {
    text += tr("Cached in %1 (%2, %3), %4.")
                .arg(qs(l->tier()), qs(l->form()), bytes(l->bytes()),
                     l->stale() ? tr("STALE: past its TTL, within the grace") : tr("fresh"));
  }
  lookup_result_->setText(text);
}

void CachePage::runPurge(const v1::PurgeCacheRequest& r, const QString& what) {
  auto p = client_.purgeCache(r);
  if (!p.ok()) {
    emit message(tr("Cache not purged: %1").arg(qs(p.status().message())));
    return;
  }
  showCache(p->cache());
  emit message(tr("Cache: %1 — %2 entries removed").arg(what).arg(p->purged()));
}

void CachePage::purge() {
  const QString model = model_->currentData().toString();
  const QString tenant = tenant_->text().trimmed();
  if (model.isEmpty() && tenant.isEmpty()) {
    emit message(tr("Choose a model or enter a tenant to purge (or flush everything)"));
    return;
  }
  QStringList what;
  if (!model.isEmpty()) what << tr("model %1").arg(model);
  if (!tenant.isEmpty()) what << tr("tenant %1").arg(tenant);
  const QString scope = what.join(tr(" and "));
  if (!confirm_(tr("Drop every cached answer of %1 from every tier?").arg(scope))) return;
  v1::PurgeCacheRequest r;
  r.set_model(model.toStdString());
  r.set_tenant(tenant.toStdString());
  runPurge(r, tr("purged %1").arg(scope));
}

void CachePage::flush() {
  if (!confirm_(tr("Drop EVERY cached answer from every tier? Requests will reach the backends until the cache "
                   "fills again."))) {
    return;
  }
  v1::PurgeCacheRequest r;
  r.set_all(true);
  runPurge(r, tr("flushed"));
}

}  // namespace spillway::ui
