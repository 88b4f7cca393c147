#include "ui/overview_page.h"

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QDateTime>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QValueAxis>
#include <QVBoxLayout>

namespace spillway::ui {

namespace {

QChartView* makeChart(const QString& title, std::initializer_list<QLineSeries*> series, QValueAxis*& x,
                      QValueAxis*& y, const QString& y_title, QWidget* parent) {
  auto* chart = new QChart;
  chart->setTitle(title);
  chart->legend()->setAlignment(Qt::AlignBottom);
  x = new QValueAxis;
  y = new QValueAxis;
  x->setTitleText(QObject::tr("seconds"));
  y->setTitleText(y_title);
  x->setLabelFormat("%.0f");
  chart->addAxis(x, Qt::AlignBottom);
  chart->addAxis(y, Qt::AlignLeft);
  for (auto* s : series) {
    chart->addSeries(s);
    s->attachAxis(x);
    s->attachAxis(y);
  }
  auto* view = new QChartView(chart, parent);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumHeight(220);
  return view;
}

}  // namespace

OverviewPage::OverviewPage(QWidget* parent)
    : QWidget(parent), banner_(new QLabel(this)), window_box_(new QComboBox(this)) {
  window_box_->addItem(tr("Live, 5 minutes"), 0);
  window_box_->addItem(tr("Last hour"), 3600);
  window_box_->addItem(tr("Last 24 hours"), 86400);
  window_box_->setToolTip(tr("Hour and day views come from the engine's recorded history"));
  connect(window_box_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setWindow(window_box_->itemData(i).toInt()); });
  banner_->setStyleSheet("QLabel { background: #c62828; color: white; padding: 8px; font-weight: bold; }");
  banner_->setWordWrap(true);
  banner_->hide();
  auto* grid = new QGridLayout;
  addTile(grid, 0, "rps", tr("Requests/s"));
  addTile(grid, 1, "success", tr("Success"));
  addTile(grid, 2, "p99", tr("Latency p99"));
  addTile(grid, 3, "ttft", tr("TTFT p95"));
  addTile(grid, 4, "backends", tr("Backends up"));
  addTile(grid, 5, "in_flight", tr("In flight"));

  ok_ = new QLineSeries;
  ok_->setName(tr("ok/s"));
  errors_ = new QLineSeries;
  errors_->setName(tr("errors/s"));
  p50_ = new QLineSeries;
  p50_->setName(tr("p50"));
  p99_ = new QLineSeries;
  p99_->setName(tr("p99"));
  auto* throughput = makeChart(tr("Throughput by outcome"), {ok_, errors_}, throughput_x_, throughput_y_,
                               tr("requests/s"), this);
  auto* latency = makeChart(tr("Latency"), {p50_, p99_}, latency_x_, latency_y_, tr("ms"), this);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(banner_);
  layout->addLayout(grid);
  auto* bar = new QHBoxLayout;
  bar->addStretch(1);
  bar->addWidget(new QLabel(tr("Charts:"), this));
  bar->addWidget(window_box_);
  layout->addLayout(bar);
  layout->addWidget(throughput, 1);
  layout->addWidget(latency, 1);
}

QLabel* OverviewPage::addTile(QGridLayout* grid, int index, const QString& name, const QString& title) {
  auto* box = new QWidget(this);
  box->setObjectName("tile");
  box->setStyleSheet("#tile { border: 1px solid palette(mid); border-radius: 6px; }");
  auto* v = new QVBoxLayout(box);
  auto* caption = new QLabel(title, box);
  auto* value = new QLabel("–", box);
  QFont f = value->font();
  f.setPointSizeF(f.pointSizeF() * 1.8);
  f.setBold(true);
  value->setFont(f);
  value->setObjectName("tile-" + name);
  v->addWidget(caption);
  v->addWidget(value);
  grid->addWidget(box, 0, index);
  tiles_[name] = value;
  return value;
}

QString OverviewPage::alertText() const { return banner_->isVisible() ? banner_->text() : QString(); }

QString OverviewPage::tileText(const QString& name) const {
  auto it = tiles_.find(name);
  return it == tiles_.end() ? QString() : it->second->text();
}

void OverviewPage::setWindow(int seconds) {
  window_s_ = seconds;
  const int index = window_box_->findData(seconds);
  if (index >= 0 && index != window_box_->currentIndex()) window_box_->setCurrentIndex(index);
  history_loaded_ms_ = 0;
  if (window_s_ == 0) redraw();
  else loadHistory();
}

void OverviewPage::loadHistory() {
  if (!history_) return;
  const int64_t to = last_ts_ms_ ? last_ts_ms_ : QDateTime::currentMSecsSinceEpoch();
  const int64_t from = to - int64_t{window_s_} * 1000;
  auto series = [&](const char* name) {
    v1::QueryHistoryRequest r;
    r.set_series(name);
    r.set_from_ms(from);
    r.set_to_ms(to);
    auto h = history_->queryHistory(r);
    return h.ok() ? *h : v1::HistorySeries();
  };
  const auto rps = series("requests_per_second");
  const auto err = series("error_rate");
  const auto p99 = series("latency_p99_seconds");
  QList<QPointF> ok, errors, lat;
  double max_rps = 1, max_ms = 1;
  for (int i = 0; i < rps.points_size(); ++i) {
    const double t = (rps.points(i).ts_ms() - to) / 1000.0;  // seconds before now
    const double e = i < err.points_size() ? err.points(i).value() : 0;
    ok.append({t, rps.points(i).value() * (1 - e)});
    errors.append({t, rps.points(i).value() * e});
    max_rps = std::max(max_rps, rps.points(i).value());
  }
  for (const auto& p : p99.points()) {
    lat.append({(p.ts_ms() - to) / 1000.0, p.value() * 1e3});
    max_ms = std::max(max_ms, p.value() * 1e3);
  }
  ok_->replace(ok);
  errors_->replace(errors);
  p50_->replace({});
  p99_->replace(lat);
  throughput_x_->setRange(-window_s_, 0);
  latency_x_->setRange(-window_s_, 0);
  throughput_y_->setRange(0, max_rps * 1.15);
  latency_y_->setRange(0, max_ms * 1.15);
  history_loaded_ms_ = to;
}

int OverviewPage::chartPointCount() const { return static_cast<int>(ok_->count()); }

void OverviewPage::showSnapshot(const v1::MetricsSnapshot& s) {
  last_ts_ms_ = s.ts_ms();
  if (first_ts_ms_ == 0) first_ts_ms_ = s.ts_ms();
  const double t = (s.ts_ms() - first_ts_ms_) / 1000.0;
  const double errors = s.requests_per_second() * s.error_rate();
  points_.push_back({t, s.requests_per_second() - errors, errors, s.latency_p50_seconds() * 1e3,
                     s.latency_p99_seconds() * 1e3});
  while (!points_.empty() && points_.front().t_s < t - kWindowSeconds) points_.pop_front();

  int up = 0;
  for (const auto& b : s.backends()) up += b.state() == "up";
  tiles_["rps"]->setText(QString::number(s.requests_per_second(), 'f', 1));
  tiles_["success"]->setText(s.requests_per_second() > 0 ? QString("%1 %").arg((1 - s.error_rate()) * 100, 0, 'f', 1)
                                                         : QString("–"));
  tiles_["p99"]->setText(QString("%1 ms").arg(s.latency_p99_seconds() * 1e3, 0, 'f', 0));
  tiles_["ttft"]->setText(QString("%1 ms").arg(s.ttft_p95_seconds() * 1e3, 0, 'f', 0));
  tiles_["backends"]->setText(QString("%1 / %2").arg(up).arg(s.backends_size()));
  tiles_["in_flight"]->setText(QString::number(s.in_flight()));
  const QStringList firing = rules_.feed(s.ts_ms(), s.error_rate(), s.latency_mean_seconds());
  banner_->setText(firing.join("\n"));
  banner_->setVisible(!firing.isEmpty());
  if (window_s_ == 0) redraw();
  else if (s.ts_ms() - history_loaded_ms_ >= 10'000) loadHistory();  // history changes slowly
}

void OverviewPage::redraw() {
  QList<QPointF> ok, err, p50, p99;
  ok.reserve(static_cast<qsizetype>(points_.size()));
  err.reserve(ok.capacity());
  p50.reserve(ok.capacity());
  p99.reserve(ok.capacity());
  double max_rps = 1, max_ms = 1;
  for (const auto& p : points_) {
    ok.append({p.t_s, p.ok_per_s});
    err.append({p.t_s, p.errors_per_s});
    p50.append({p.t_s, p.p50_ms});
    p99.append({p.t_s, p.p99_ms});
    max_rps = std::max({max_rps, p.ok_per_s, p.errors_per_s});
    max_ms = std::max({max_ms, p.p99_ms});
  }
  ok_->replace(ok);
  errors_->replace(err);
  p50_->replace(p50);
  p99_->replace(p99);
  const double x0 = points_.empty() ? 0 : points_.front().t_s;
  const double x1 = points_.empty() ? 1 : std::max(points_.back().t_s, x0 + 1);
  throughput_x_->setRange(x0, x1);
  latency_x_->setRange(x0, x1);
  throughput_y_->setRange(0, max_rps * 1.15);
  latency_y_->setRange(0, max_ms * 1.15);
}

}  // namespace spillway::ui
