// Metric families and the Prometheus text format they render.
#include "registry_test.h"

#include <QtTest>

#include <thread>

#include "metrics/registry.h"

using namespace spillway::metrics;

void RegistryTest::rendersCountersAndGauges() {
  Registry r;
  auto& c = r.counter("x_requests_total", "Requests.", {"code"});
  c.with({"200"}).inc(3);
  c.with({"5\"0\\3\n"}).inc();
  r.gauge("x_in_flight", "Now.", {}).with({}).set(-2);
  std::string text = r.render();
  QVERIFY(text.find("# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n") != std::string::npos);
  QVERIFY(text.find("x_requests_total{code=\"200\"} 3\n") != std::string::npos);
  const std::string escaped = R"(x_requests_total{code="5\"0\\3\n"} 1)";
  QVERIFY2(text.find(escaped) != std::string::npos, text.c_str());
  QVERIFY(text.find("# TYPE x_in_flight gauge\nx_in_flight -2\n") != std::string::npos);
}

void RegistryTest::histogramBucketsAreCumulative() {
  Registry r;
  auto& h = r.histogram("x_seconds", "Latency.", {"route"}, {0.1, 1, 0.5}).with({"a"});
  for (double v : {0.05, 0.1, 0.3, 0.7, 5.0}) h.observe(v);
  std::string text = r.render();
  QVERIFY2(text.find("x_seconds_bucket{route=\"a\",le=\"0.1\"} 2\n") != std::string::npos, text.c_str());
  QVERIFY(text.find("x_seconds_bucket{route=\"a\",le=\"0.5\"} 3\n") != std::string::npos);
  QVERIFY(text.find("x_seconds_bucket{route=\"a\",le=\"1\"} 4\n") != std::string::npos);
  QVERIFY(text.find("x_seconds_bucket{route=\"a\",le=\"+Inf\"} 5\n") != std::string::npos);
  QVERIFY(text.find("x_seconds_count{route=\"a\"} 5\n") != std::string::npos);
  QCOMPARE(h.count(), 5u);
  QVERIFY(std::abs(h.sum() - 6.15) < 1e-9);
}

void RegistryTest::quantileInterpolatesInsideTheBucket() {
  Histogram h(std::make_shared<const std::vector<double>>(std::vector<double>{1, 2, 4}));
  QCOMPARE(h.quantile(0.5), 0.0);
  for (int i = 0; i < 10; ++i) h.observe(1.5);  // all in (1, 2]
  QCOMPARE(h.quantile(0.5), 1.5);
  QCOMPARE(h.quantile(1.0), 2.0);
}

void RegistryTest::callbackGaugesAreComputedWhenRendered() {
  Registry r;
  int calls = 0;
  r.callbackGauge("x_up", "Up.", {"backend"}, [&] {
    ++calls;
    return std::vector<std::pair<Labels, double>>{{{"b"}, 0}, {{"a"}, 1}};
  });
  std::string text = r.render();
  QCOMPARE(calls, 1);
  QVERIFY(text.find("x_up{backend=\"a\"} 1\nx_up{backend=\"b\"} 0\n") != std::string::npos);
}

void RegistryTest::concurrentUpdatesAreNotLost() {
  Registry r;
  auto& c = r.counter("x_total", "T.", {}).with({});
  auto& h = r.histogram("x_h_seconds", "H.", {}, {1}).with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        h.observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  QCOMPARE(c.value(), 400000u);
  QCOMPARE(h.count(), 400000u);
}

void RegistryTest::helpTextIsEscaped() {
  spillway::metrics::Registry r;
  r.counter("x_total", "a back\\slash and\na new line", {}).with({}).inc();
  const std::string text = r.render();
  QVERIFY2(text.find("# HELP x_total a back\\\\slash and\\na new line\n") != std::string::npos, text.c_str());
}

void RegistryTest::duplicateNamesAreRefusedOrShared() {
  spillway::metrics::Registry r;
  // The same family registered twice is the same family (rendered once).
  auto& a = r.counter("c_total", "help", {"l"});
  auto& b = r.counter("c_total", "help", {"l"});
  QCOMPARE(&a, &b);
  a.with({"x"}).inc();
  b.with({"x"}).inc();
  const std::string text = r.render();
  QVERIFY(text.find("c_total{l=\"x\"} 2") != std::string::npos);
  QCOMPARE(text.find("# TYPE c_total"), text.rfind("# TYPE c_total"));
  // Two callbacks cannot share a name, nor a callback take a family's.
  QVERIFY(r.callbackGauge("g", "help", {}, [] { return std::vector<std::pair<spillway::metrics::Labels, double>>{}; }).ok());
  QCOMPARE(r.callbackGauge("g", "help", {}, [] { return std::vector<std::pair<spillway::metrics::Labels, double>>{}; }).code(),
           absl::StatusCode::kAlreadyExists);
  QCOMPARE(r.callbackGauge("c_total", "help", {}, [] { return std::vector<std::pair<spillway::metrics::Labels, double>>{}; }).code(),
           absl::StatusCode::kAlreadyExists);
}

void RegistryTest::familiesCanBeUnregistered() {
  spillway::metrics::Registry r;
  auto& c = r.counter("kept_total", "help", {});
  c.with({}).inc();
  {
    auto reg = r.scopedCallbackGauge("scoped", "help", {}, [] {
      return std::vector<std::pair<spillway::metrics::Labels, double>>{{{}, 7}};
    });
    QVERIFY(reg.status().ok());
    QVERIFY(r.render().find("scoped 7") != std::string::npos);
    // A second one under the same name is refused and, when destroyed,
    // must not take the first one with it.
    auto clash = r.scopedCallbackGauge("scoped", "help", {}, [] {
      return std::vector<std::pair<spillway::metrics::Labels, double>>{};
    });
    QCOMPARE(clash.status().code(), absl::StatusCode::kAlreadyExists);
  }
  QVERIFY(r.render().find("scoped") == std::string::npos);  // gone with its handle
  QVERIFY(r.unregister("kept_total"));
  QVERIFY(!r.unregister("kept_total"));
  QVERIFY(r.render().find("kept_total") == std::string::npos);
  c.with({}).inc();  // references stay valid after unregistering
  // The name is free again.
  QVERIFY(r.callbackGauge("kept_total", "now a gauge", {}, [] { return std::vector<std::pair<spillway::metrics::Labels, double>>{}; }).ok());
}

QTEST_APPLESS_MAIN(RegistryTest)
