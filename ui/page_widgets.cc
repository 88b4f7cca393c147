#include "ui/page_widgets.h"

#include <algorithm>

#include <QChart>
#include <QHeaderView>
#include <QLineSeries>
#include <QTableWidget>
#include <QValueAxis>

namespace spillway::ui {

QTableWidget* liveTable(const QStringList& headers, QWidget* parent) {
  auto* t = new QTableWidget(0, static_cast<int>(headers.size()), parent);
  t->setHorizontalHeaderLabels(headers);
  t->verticalHeader()->setVisible(false);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  t->setSelectionMode(QAbstractItemView::SingleSelection);
  t->horizontalHeader()->setStretchLastSection(true);
  return t;
}

void setRow(QTableWidget* t, int row, const QStringList& cells) {
  for (int c = 0; c < cells.size(); ++c) {
    auto* item = t->item(row, c);
    if (!item) {
      item = new QTableWidgetItem;
      t->setItem(row, c, item);
    }
    if (item->text() != cells[c]) item->setText(cells[c]);
  }
}

QChart* liveChart(const QString& title, const QString& unit, QValueAxis** x, QValueAxis** y) {
  auto* c = new QChart;
  c->setTitle(title);
  c->legend()->setAlignment(Qt::AlignBottom);
  c->setMargins(QMargins(4, 4, 4, 4));
  *x = new QValueAxis;
  *y = new QValueAxis;
  (*x)->setLabelFormat("%.0f");
  (*x)->setTitleText(QObject::tr("seconds"));
  (*y)->setTitleText(unit);
  c->addAxis(*x, Qt::AlignBottom);
  c->addAxis(*y, Qt::AlignLeft);
  return c;
}

LiveSeries::LiveSeries(const QString& name) {
  setName(name);
  window_.reserve(kChartWindowSeconds + 2);
}

void LiveSeries::push(double x, double y) {
  if (window_.size() > kChartWindowSeconds) window_.removeFirst();
  window_.append(QPointF(x, y));
  replace(window_);
}

double LiveSeries::top() const {
  double top = 0;
  for (const QPointF& p : window_) top = std::max(top, p.y());
  return top;
}

void fitAxes(QValueAxis* x, QValueAxis* y, const std::vector<LiveSeries*>& lines, double now_s, double min_top) {
  double top = min_top;
  for (auto* s : lines) top = std::max(top, s->top());
  x->setRange(std::max(0.0, now_s - kChartWindowSeconds), std::max(10.0, now_s));
  y->setRange(0, top * 1.15);
}

}  // namespace spillway::ui
