// The JSON writer: doubles in their shortest round-trip form, escapes, nesting.
#pragma once

#include <QObject>

class JsonWriterTest : public QObject {
  Q_OBJECT
 private slots:
  void doublesAreShortestRoundTrip();
  void nonFiniteDoublesAreNull();
};
