// Prometheus-style metrics: counters, gauges and histograms grouped in
// labelled families, rendered in the text exposition format.
//
// Thread safety: every call is thread-safe. Looking up a labelled child takes
// the family's mutex, so hot paths look a child up once and keep the
// reference (children are never destroyed while the registry lives); updating
// a child is a relaxed atomic operation, no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace spillway::metrics {

using Labels = std::vector<std::string>;  // values, in the family's label order

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
 public:
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void observe(double v);
  // Cumulative counts per bound, then the +Inf count.
  std::vector<uint64_t> cumulativeCounts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return *bounds_; }
  // Value below which fraction q of observations fall, interpolated inside
  // the bucket (as Prometheus' histogram_quantile does). 0 when empty.
  double quantile(double q) const;

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// The q-quantile of the observations made between two cumulative-count
// snapshots of a histogram with `bounds` (interpolated in the bucket).
double quantileOfDelta(const std::vector<double>& bounds, const std::vector<uint64_t>& before,
                       const std::vector<uint64_t>& after, double q);

template <typename T>
class Family;

// Latency buckets in seconds, 1 ms .. 120 s.
std::vector<double> latencyBucketsSeconds();

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family; names must be unique and follow Prometheus rules
  // (counters end in _total). Returned references live as long as the registry.
  Family<Counter>& counter(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Histogram>& histogram(std::string name, std::string help,
                               std::vector<std::string> label_names, std::vector<double> bounds);

  // A gauge computed when rendered: `fn` returns (label values, value) pairs.
  using GaugeFn = std::function<std::vector<std::pair<Labels, double>>()>;
  void callbackGauge(std::string name, std::string help, std::vector<std::string> label_names,
                     GaugeFn fn);

  // The Prometheus text exposition (version 0.0.4) of every family.
  std::string render() const;

  struct FamilyBase {
    virtual ~FamilyBase() = default;
    virtual void render(std::string& out) const = 0;
  };

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;  // GUARDED_BY(mu_)
};

template <typename T>
class Family final : public Registry::FamilyBase {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // The child for these label values, created on first use.
  T& with(const Labels& values) {
    std::lock_guard lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }

  void render(std::string& out) const override;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_;  // GUARDED_BY(mu_)
};

}  // namespace spillway::metrics
