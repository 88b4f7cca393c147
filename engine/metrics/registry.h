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
#include <utility>

#include "absl/status/status.h"
#include "common/mutex.h"
#include <map>
#include <memory>
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

  // Registers a family; names follow Prometheus rules (counters end in
  // _total). Registering the same name again with the same kind and labels
  // returns the family already there (so code rebuilt on a config apply may
  // register again); a different kind or label set under a taken name is a
  // programming error and aborts with a message. Returned references live as
  // long as the registry (an unregistered family is kept, just not shown).
  Family<Counter>& counter(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Histogram>& histogram(std::string name, std::string help,
                               std::vector<std::string> label_names, std::vector<double> bounds);

  // A gauge computed when rendered: `fn` returns (label values, value) pairs.
  // AlreadyExists when the name is taken (two callbacks cannot share one).
  using GaugeFn = std::function<std::vector<std::pair<Labels, double>>()>;
  absl::Status callbackGauge(std::string name, std::string help, std::vector<std::string> label_names, GaugeFn fn);

  // Removes a family from the exposition; false when there is none.
  bool unregister(const std::string& name);

  // A callback gauge that unregisters itself when the handle is destroyed:
  // for metrics of objects rebuilt on each config apply. `fn` must stay
  // callable until then.
  class Registration {
   public:
    Registration() = default;
    Registration(Registry* r, std::string name, absl::Status st) : r_(r), name_(std::move(name)), status_(std::move(st)) {}
    Registration(Registration&& o) noexcept : r_(std::exchange(o.r_, nullptr)), name_(std::move(o.name_)), status_(o.status_) {}
    Registration& operator=(Registration&& o) noexcept {
      reset();
      r_ = std::exchange(o.r_, nullptr);
      name_ = std::move(o.name_);
      status_ = o.status_;
      return *this;
    }
    ~Registration() { reset(); }
    const absl::Status& status() const { return status_; }
    void reset() {
      if (r_ && status_.ok()) r_->unregister(name_);
      r_ = nullptr;
    }

   private:
    Registry* r_ = nullptr;
    std::string name_;
    absl::Status status_;
  };
  Registration scopedCallbackGauge(std::string name, std::string help, std::vector<std::string> label_names, GaugeFn fn);
  // The same for a count kept elsewhere (atomics of a long-lived object):
  // exposed with TYPE counter, so it must never decrease.
  Registration scopedCallbackCounter(std::string name, std::string help, std::vector<std::string> label_names,
                                     GaugeFn fn);

  // The Prometheus text exposition (version 0.0.4) of every family.
  std::string render() const;

  struct FamilyBase {
    virtual ~FamilyBase() = default;
    virtual void render(std::string& out) const = 0;
    virtual const std::string& name() const = 0;
    // Kind and labels, for telling a repeat registration from a clash.
    virtual std::string signature() const = 0;
  };

 private:
  // The family named like `f` if it has f's signature; nullptr when the
  // name is free (then `f` is added). Aborts on a clash.
  FamilyBase* addOrFind(std::unique_ptr<FamilyBase> f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status addCallback(std::string name, std::string help, std::vector<std::string> label_names, GaugeFn fn,
                           const char* type) ABSL_LOCKS_EXCLUDED(mu_);

  mutable common::Mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<FamilyBase>> retired_ ABSL_GUARDED_BY(mu_);  // unregistered, kept for references
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
    common::MutexLock lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }

  void render(std::string& out) const override;
  const std::string& name() const override { return name_; }
  std::string signature() const override;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<T>()> make_;
  mutable common::Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::metrics
