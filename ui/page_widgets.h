// Building blocks the live pages share: read-only tables updated in place
// (no flicker, selection kept), and rolling line charts over the last
// couple of minutes.
#pragma once

#include <QLineSeries>
#include <QList>
#include <QPointF>
#include <QStringList>
#include <vector>

class QChart;
class QTableWidget;
class QValueAxis;
class QWidget;

namespace spillway::ui {

// Seconds of history a live chart shows.
inline constexpr int kChartWindowSeconds = 120;

// A read-only table, one row selectable at a time, last column stretched.
QTableWidget* liveTable(const QStringList& headers, QWidget* parent);
// Sets a row's cells, touching only the ones that changed.
void setRow(QTableWidget* t, int row, const QStringList& cells);
// A chart with a seconds axis below and a `unit` axis on the left.
QChart* liveChart(const QString& title, const QString& unit, QValueAxis** x, QValueAxis** y);

// A rolling line over the window: its points live in a buffer reserved once
// and reach the chart with one replace() per tick — one repaint, where
// append() then remove(0) signalled, and repainted, twice per point (the
// Overview's charts work the same way).
class LiveSeries : public QLineSeries {
 public:
  explicit LiveSeries(const QString& name);
  // Adds a point, dropping those older than the window.
  void push(double x, double y);
  // The highest point in the window (0 when empty).
  double top() const;

 private:
  QList<QPointF> window_;
};

// The x axis over the window ending at `now_s`; the y axis from 0 to above
// the highest point (at least `min_top`).
void fitAxes(QValueAxis* x, QValueAxis* y, const std::vector<LiveSeries*>& lines, double now_s, double min_top = 1);

}  // namespace spillway::ui
