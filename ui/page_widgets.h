// Building blocks the live pages share: read-only tables updated in place
// (no flicker, selection kept), and rolling line charts over the last
// couple of minutes.
#pragma once

#include <QStringList>
#include <vector>

class QChart;
class QLineSeries;
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
// Adds a point, dropping those older than the window.
void appendPoint(QLineSeries* s, double x, double y);
// The x axis over the window ending at `now_s`; the y axis from 0 to above
// the highest point (at least `min_top`).
void fitAxes(QValueAxis* x, QValueAxis* y, const std::vector<QLineSeries*>& lines, double now_s, double min_top = 1);

}  // namespace spillway::ui
