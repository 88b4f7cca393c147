#include "sim/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace spillway::sim {
namespace {
constexpr int kSubBits = 6;                 // 64 sub-buckets per power of two
constexpr uint64_t kLinear = 2u << kSubBits;  // values below 128 are exact
constexpr int kMaxBits = 44;                // ~203 days in µs; larger values clamp
constexpr size_t kBuckets = kLinear + (kMaxBits - kSubBits - 1) * (1u << kSubBits);  // msb 7..43
}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

size_t LatencyHistogram::bucketOf(uint64_t v) {
  if (v < kLinear) return static_cast<size_t>(v);
  int msb = 63 - std::countl_zero(v);  // >= 7
  if (msb >= kMaxBits) return kBuckets - 1;
  int shift = msb - kSubBits;
  uint64_t sub = (v >> shift) - (1u << kSubBits);  // 0..63
  return kLinear + static_cast<size_t>(msb - kSubBits - 1) * (1u << kSubBits) + static_cast<size_t>(sub);
}

uint64_t LatencyHistogram::upperBound(size_t b) {
  if (b < kLinear) return b;
  size_t rel = b - kLinear;
  int msb = static_cast<int>(rel >> kSubBits) + kSubBits + 1;
  uint64_t sub = (rel & ((1u << kSubBits) - 1)) + (1u << kSubBits);
  int shift = msb - kSubBits;
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::record(uint64_t v) {
  buckets_[bucketOf(v)]++;
  count_++;
  sum_ += v;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(upperBound(i), max_);
  }
  return max_;
}

}  // namespace spillway::sim
