#include "cache/bloom.h"

#include <cmath>

namespace spillway::cache {

BloomFilter::BloomFilter(uint64_t expected_entries, double false_positive_rate) {
  const double n = static_cast<double>(std::max<uint64_t>(1, expected_entries));
  const double ln2 = std::log(2.0);
  bits_ = std::max<uint64_t>(64, static_cast<uint64_t>(std::ceil(-n * std::log(false_positive_rate) / (ln2 * ln2))));
  bits_ = (bits_ + 63) / 64 * 64;
  hashes_ = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(static_cast<double>(bits_) / n * ln2)));
  words_ = std::vector<std::atomic<uint64_t>>(bits_ / 64);
}

// Probe i is lo + i·hi (Kirsch–Mitzenmacher double hashing): the key is
// already a 128-bit hash, so its halves are two independent hashes.
void BloomFilter::insert(const CacheKey& k) {
  for (uint32_t i = 0; i < hashes_; ++i) {
    const uint64_t bit = (k.lo + i * (k.hi | 1)) % bits_;
    const uint64_t mask = uint64_t{1} << (bit % 64);
    if (!(words_[bit / 64].fetch_or(mask, std::memory_order_relaxed) & mask)) {
      set_bits_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

bool BloomFilter::mayContain(const CacheKey& k) const {
  for (uint32_t i = 0; i < hashes_; ++i) {
    const uint64_t bit = (k.lo + i * (k.hi | 1)) % bits_;
    if (!(words_[bit / 64].load(std::memory_order_relaxed) & (uint64_t{1} << (bit % 64)))) return false;
  }
  return true;
}

double BloomFilter::estimatedFalsePositiveRate() const {
  const double set = static_cast<double>(set_bits_.load(std::memory_order_relaxed));
  return std::pow(set / static_cast<double>(bits_), hashes_);
}

}  // namespace spillway::cache
