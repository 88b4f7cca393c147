// An HDR-style latency histogram: log-linear buckets (64 per power of two,
// exact below 128 µs) recording every sample, so percentiles carry at most
// ~1.6 % relative error and no sampling bias. Not thread-safe: keep one per
// thread and merge().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace spillway::sim {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Records a duration in microseconds.
  void record(uint64_t micros);
  void recordSeconds(double s) { record(s <= 0 ? 0 : static_cast<uint64_t>(s * 1e6 + 0.5)); }
  void merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
  // The smallest recorded bucket bound below which fraction q of samples
  // fall (q in [0,1]); 0 when empty. Never above max().
  uint64_t percentile(double q) const;

  static size_t bucketOf(uint64_t micros);
  static uint64_t upperBound(size_t bucket);  // largest value in the bucket

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace spillway::sim
