// Metric families and the Prometheus text format they render.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class RegistryTest : public QObject {
  Q_OBJECT
 private slots:
  void rendersCountersAndGauges();
  void histogramBucketsAreCumulative();
  void quantileInterpolatesInsideTheBucket();
  void callbackGaugesAreComputedWhenRendered();
  void concurrentUpdatesAreNotLost();
  void helpTextIsEscaped();
  void duplicateNamesAreRefusedOrShared();
  void familiesCanBeUnregistered();
};
