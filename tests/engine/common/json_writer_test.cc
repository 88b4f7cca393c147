#include "json_writer_test.h"

#include <QtTest>

#include <cstdlib>

#include "common/json_writer.h"

using spillway::common::JsonWriter;

namespace {
std::string one(double v) {
  JsonWriter w;
  w.beginArray().value(v).endArray();
  std::string s = w.take();
  return s.substr(1, s.size() - 2);
}
}  // namespace

void JsonWriterTest::doublesAreShortestRoundTrip() {
  // Before: "%.17g" printed 0.1 as 0.10000000000000001.
  QCOMPARE(one(0.1), std::string("0.1"));
  QCOMPARE(one(1.5), std::string("1.5"));
  QCOMPARE(one(100.0), std::string("100"));
  QCOMPARE(one(1e21), std::string("1e+21"));
  for (double v : {0.1, 1.0 / 3, 2.0 / 3, 123456.789, 5e-324, 1.7976931348623157e308}) {
    const std::string text = one(v);
    QCOMPARE(std::strtod(text.c_str(), nullptr), v);  // reads back exactly
  }
}

void JsonWriterTest::nonFiniteDoublesAreNull() {
  QCOMPARE(one(std::numeric_limits<double>::infinity()), std::string("null"));
  QCOMPARE(one(std::nan("")), std::string("null"));
}

QTEST_APPLESS_MAIN(JsonWriterTest)
