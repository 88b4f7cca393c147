#include "ui/overview_page.h"

#include <cmath>

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QDateTime>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QEvent>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>
#include <QValueAxis>
#include <algorithm>
#include <optional>

namespace spillway::ui {

OverviewPage::OverviewPage(QWidget* parent)
    : QWidget(parent), banner_(new QLabel(this)), window_box_(new QComboBox(this)) {
  rules_.load(QSettings());
  window_box_->addItem(tr("Live, 5 minutes"), 0);
  window_box_->addItem(tr("Last hour"), 3600);
  window_box_->addItem(tr("Last 24 hours"), 86400);
  window_box_->setToolTip(tr("Hour and day views come from the engine's recorded history"));
  connect(window_box_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setWindow(window_box_->itemData(i).toInt()); });
  banner_->setStyleSheet("QLabel { background: #c62828; color: white; padding: 8px; font-weight: bold; }");
  banner_->setWordWrap(true);
  banner_->hide();
  auto* tiles = new QGridLayout;
  addTile(tiles, 0, "rps", tr("Requests/s"));
  addTile(tiles, 1, "success", tr("Success"));
  addTile(tiles, 2, "p99", tr("Latency p99"));
  addTile(tiles, 3, "ttft", tr("TTFT p95"));
  addTile(tiles, 4, "backends", tr("Backends up"));
  addTile(tiles, 5, "in_flight", tr("In flight"));

  auto* charts = new QGridLayout;
  addChart(charts, 0, 0, tr("Throughput by outcome"), tr("requests/s"),
           {{tr("ok/s"), &Sample::ok_per_s}, {tr("errors/s"), &Sample::errors_per_s}});
  addChart(charts, 0, 1, tr("Latency"), tr("ms"), {{tr("p50"), &Sample::p50_ms}, {tr("p99"), &Sample::p99_ms}});
  addChart(charts, 0, 2, tr("Time to first token"), tr("ms"), {{tr("p95"), &Sample::ttft_p95_ms}});
  addChart(charts, 1, 0, tr("Error rate"), tr("%"), {{tr("errors"), &Sample::error_pct}});
  addChart(charts, 1, 1, tr("In flight"), tr("requests"), {{tr("in flight"), &Sample::in_flight}});
  applyChartTheme();

  auto* rules_button = new QPushButton(tr("Alert &rules…"), this);
  rules_button->setToolTip(tr("Thresholds and durations of the alert banners"));
  connect(rules_button, &QPushButton::clicked, this, &OverviewPage::editAlertRules);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(banner_);
  layout->addLayout(tiles);
  auto* bar = new QHBoxLayout;
  bar->addWidget(rules_button);
  bar->addStretch(1);
  bar->addWidget(new QLabel(tr("Charts:"), this));
  bar->addWidget(window_box_);
  layout->addLayout(bar);
  layout->addLayout(charts, 1);
}

void OverviewPage::showFigures(const google::protobuf::RepeatedPtrField<v1::Figure>& figures) {
  for (const auto& f : figures) {
    const QString name = "figure:" + QString::fromStdString(f.key());
    if (!tiles_.count(name)) addTile(tile_grid_, tile_count_, name, QString::fromStdString(f.title()));
    const QString unit = QString::fromStdString(f.unit());
    QString text;
    if (unit == "%") text = QString("%1 %").arg(f.value() * 100, 0, 'f', 1);
    else if (unit.isEmpty()) text = QString::number(f.value(), 'g', 6);
    else text = QString("%1 %2").arg(f.value(), 0, 'f', f.value() == std::floor(f.value()) ? 0 : 1).arg(unit);  // 18.8 req/s
    tiles_[name]->setText(text);
  }
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
  // Six tiles a row; figures from later capabilities wrap onto new rows.
  grid->addWidget(box, index / 6, index % 6);
  tiles_[name] = value;
  tile_grid_ = grid;
  tile_count_ = std::max(tile_count_, index + 1);
  return value;
}

void OverviewPage::addChart(QGridLayout* grid, int row, int col, const QString& title, const QString& unit,
                            std::vector<std::pair<QString, double Sample::*>> lines) {
  Chart c;
  c.chart = new QChart;
  c.chart->setTitle(title);
  c.chart->legend()->setAlignment(Qt::AlignBottom);
  c.chart->legend()->setVisible(lines.size() > 1);
  c.chart->setMargins(QMargins(4, 4, 4, 4));
  c.x = new QValueAxis;
  c.y = new QValueAxis;
  c.x->setLabelFormat("%.0f");
  c.x->setTitleText(tr("seconds"));
  c.y->setTitleText(unit);
  c.chart->addAxis(c.x, Qt::AlignBottom);
  c.chart->addAxis(c.y, Qt::AlignLeft);
  for (auto& [name, field] : lines) {
    auto* s = new QLineSeries;
    s->setName(name);
    c.chart->addSeries(s);
    s->attachAxis(c.x);
    s->attachAxis(c.y);
    c.lines.push_back({s, field});
  }
  auto* view = new QChartView(c.chart, this);
  view->setRenderHint(QPainter::Antialiasing);
  view->setMinimumHeight(200);
  grid->addWidget(view, row, col);
  charts_.push_back(std::move(c));
}

void OverviewPage::applyChartTheme() {
  const bool dark = palette().color(QPalette::Window).lightness() < 128;
  for (auto& c : charts_) {
    // setTheme resets fonts and colours only; titles, series and axes stay.
    c.chart->setTheme(dark ? QChart::ChartThemeDark : QChart::ChartThemeLight);
    c.chart->setBackgroundBrush(palette().base());
  }
}

bool OverviewPage::chartsAreDark() const { return charts_.front().chart->theme() == QChart::ChartThemeDark; }

void OverviewPage::changeEvent(QEvent* event) {
  if (event->type() == QEvent::PaletteChange) applyChartTheme();
  QWidget::changeEvent(event);
}

QString OverviewPage::alertText() const { return banner_->isVisible() ? banner_->text() : QString(); }

QString OverviewPage::tileText(const QString& name) const {
  auto it = tiles_.find(name);
  return it == tiles_.end() ? QString() : it->second->text();
}

QStringList OverviewPage::chartTitles() const {
  QStringList out;
  for (const auto& c : charts_) out << c.chart->title();
  return out;
}

QList<QPointF> OverviewPage::linePoints(const QString& chart, const QString& line) const {
  for (const auto& c : charts_) {
    if (c.chart->title() != chart) continue;
    for (const auto& l : c.lines) {
      if (l.series->name() == line) return l.series->points();
    }
  }
  return {};
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
  // Every series is recorded at the same instants: zip them by timestamp.
  std::map<int64_t, Sample> by_ts;
  auto load = [&](const char* series, auto&& set) {
    v1::QueryHistoryRequest r;
    r.set_series(series);
    r.set_from_ms(from);
    r.set_to_ms(to);
    auto h = history_->queryHistory(r);
    if (!h.ok()) return;
    for (const auto& p : h->points()) set(by_ts[p.ts_ms()], p.value());
  };
  load("requests_per_second", [](Sample& s, double v) { s.ok_per_s = v; });
  load("error_rate", [](Sample& s, double v) { s.error_pct = v * 100; });
  load("latency_p50_seconds", [](Sample& s, double v) { s.p50_ms = v * 1e3; });
  load("latency_p99_seconds", [](Sample& s, double v) { s.p99_ms = v * 1e3; });
  load("ttft_p95_seconds", [](Sample& s, double v) { s.ttft_p95_ms = v * 1e3; });
  load("in_flight", [](Sample& s, double v) { s.in_flight = v; });
  std::vector<Sample> samples;
  samples.reserve(by_ts.size());
  for (auto& [ts, s] : by_ts) {
    s.t_s = (ts - to) / 1000.0;  // seconds before now
    const double all = s.ok_per_s;
    s.errors_per_s = all * s.error_pct / 100;
    s.ok_per_s = all - s.errors_per_s;
    samples.push_back(s);
  }
  draw(samples, -window_s_, 0);
  history_loaded_ms_ = to;
}

int OverviewPage::chartPointCount() const { return static_cast<int>(charts_.front().lines.front().series->count()); }

void OverviewPage::showSnapshot(const v1::MetricsSnapshot& s) {
  last_ts_ms_ = s.ts_ms();
  if (first_ts_ms_ == 0) first_ts_ms_ = s.ts_ms();
  Sample p;
  p.t_s = (s.ts_ms() - first_ts_ms_) / 1000.0;
  p.errors_per_s = s.requests_per_second() * s.error_rate();
  p.ok_per_s = s.requests_per_second() - p.errors_per_s;
  p.p50_ms = s.latency_p50_seconds() * 1e3;
  p.p99_ms = s.latency_p99_seconds() * 1e3;
  p.ttft_p95_ms = s.ttft_p95_seconds() * 1e3;
  p.error_pct = s.error_rate() * 100;
  p.in_flight = static_cast<double>(s.in_flight());
  points_.push_back(p);
  while (!points_.empty() && points_.front().t_s < p.t_s - kWindowSeconds) points_.pop_front();

  int up = 0;
  for (const auto& b : s.backends()) up += b.state() == "up";
  tiles_["rps"]->setText(QString::number(s.requests_per_second(), 'f', 1));
  tiles_["success"]->setText(s.requests_per_second() > 0 ? QString("%1 %").arg((1 - s.error_rate()) * 100, 0, 'f', 1)
                                                         : QString("–"));
  tiles_["p99"]->setText(QString("%1 ms").arg(s.latency_p99_seconds() * 1e3, 0, 'f', 0));
  tiles_["ttft"]->setText(QString("%1 ms").arg(s.ttft_p95_seconds() * 1e3, 0, 'f', 0));
  tiles_["backends"]->setText(QString("%1 / %2").arg(up).arg(s.backends_size()));
  tiles_["in_flight"]->setText(QString::number(s.in_flight()));
  showFigures(s.figures());
  // The GPU rule reads the "gpu_utilisation" figure once the engine reports it.
  std::optional<double> gpu;
  for (const auto& f : s.figures()) {
    if (f.key() == "gpu_utilisation") gpu = f.value();
  }
  QStringList firing = rules_.feed(s.ts_ms(), s.error_rate(), s.latency_mean_seconds(), gpu);
  // The gateway's own limits (server.overload): not a rule with a threshold
  // to tune, a fact — it is turning clients away, or about to.
  double refused = 0, near = 0;
  std::optional<double> tls_days_left;
  bool tls_reload_failed = false;
  for (const auto& f : s.figures()) {
    if (f.key() == "gateway_refused_per_second") refused = f.value();
    if (f.key() == "gateway_keep_alive_off") near = f.value();
    if (f.key() == "tls_days_left") tls_days_left = f.value();
    if (f.key() == "tls_reload_failed") tls_reload_failed = f.value() > 0;
  }
  // HTTPS at the front door (server.tls): a certificate about to expire,
  // or a renewal that could not be used.
  if (tls_days_left && *tls_days_left < 14) {
    firing << tr("The front listener's TLS certificate expires in %1 days (server.tls.cert_file)")
                  .arg(std::max(0.0, *tls_days_left), 0, 'f', 1);
  }
  if (tls_reload_failed) {
    firing << tr("A replaced TLS certificate could not be used: the previous one is still served (spillctl status)");
  }
  if (refused > 0) {
    firing << tr("Gateway overloaded: its own limits (server.overload) turn away %1 connections or requests a second "
                 "with 503 gateway_overloaded")
                  .arg(refused, 0, 'f', 1);
  } else if (near > 0) {
    firing << tr("Gateway near its own limits (server.overload): answers close their connections");
  }
  banner_->setText(firing.join("\n"));
  banner_->setVisible(!firing.isEmpty());
  if (window_s_ == 0) redraw();
  else if (s.ts_ms() - history_loaded_ms_ >= 10'000) loadHistory();  // history changes slowly
}

void OverviewPage::redraw() {
  const std::vector<Sample> samples(points_.begin(), points_.end());
  const double x0 = samples.empty() ? 0 : samples.front().t_s;
  const double x1 = samples.empty() ? 1 : std::max(samples.back().t_s, x0 + 1);
  draw(samples, x0, x1);
}

void OverviewPage::draw(const std::vector<Sample>& samples, double x0, double x1) {
  for (auto& c : charts_) {
    double max = 1;
    for (auto& l : c.lines) {
      QList<QPointF> pts;
      pts.reserve(static_cast<qsizetype>(samples.size()));
      for (const auto& s : samples) {
        pts.append({s.t_s, s.*l.field});
        max = std::max(max, s.*l.field);
      }
      l.series->replace(pts);
    }
    c.x->setRange(x0, x1);
    c.y->setRange(0, max * 1.15);
    c.y->applyNiceNumbers();
  }
}

void OverviewPage::editAlertRules() {
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Alert rules"));
  auto* form = new QFormLayout(&dialog);
  struct Row {
    AlertRules::Rule* rule;
    double scale;  // threshold shown = stored * scale
    QDoubleSpinBox* threshold;
    QSpinBox* minutes;
  };
  std::vector<Row> rows;
  auto add = [&](const QString& label, AlertRules::Rule& rule, double scale, double max, const QString& unit) {
    auto* t = new QDoubleSpinBox(&dialog);
    t->setRange(0, max);
    t->setDecimals(scale == 1 ? 2 : 1);
    t->setSuffix(unit);
    t->setValue(rule.threshold * scale);
    auto* m = new QSpinBox(&dialog);
    m->setRange(0, 24 * 60);
    m->setSuffix(tr(" min"));
    m->setValue(static_cast<int>(rule.for_ms / 60'000));
    auto* h = new QHBoxLayout;
    h->addWidget(new QLabel(tr("above"), &dialog));
    h->addWidget(t);
    h->addWidget(new QLabel(tr("for"), &dialog));
    h->addWidget(m);
    form->addRow(label, h);
    rows.push_back({&rule, scale, t, m});
  };
  add(tr("Error rate"), rules_.error_rate, 100, 100, " %");
  add(tr("Mean latency"), rules_.mean_latency_seconds, 1, 600, " s");
  add(tr("GPU utilisation"), rules_.gpu_utilisation, 100, 100, " %");
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  form->addRow(buttons);
  if (dialog.exec() != QDialog::Accepted) return;
  for (const auto& r : rows) {
    r.rule->threshold = r.threshold->value() / r.scale;
    r.rule->for_ms = int64_t{r.minutes->value()} * 60'000;
  }
  QSettings settings;
  rules_.save(settings);
}

}  // namespace spillway::ui
