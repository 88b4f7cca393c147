// The penetration guard: a Bloom filter over the keys the disk (and Redis)
// tiers hold, so a request that can never hit costs no disk read or network
// round trip. Sized from the expected number of keys and the target false-
// positive rate (the article's 10 M keys at 1 % take 12 MB and 7 probes).
//
// A Bloom filter cannot forget: entries that expire or are evicted stay
// "maybe present" (false positives, never false negatives). The disk tier
// therefore rebuilds it from its table — at start-up, after a purge, and
// whenever the keys removed since the last build exceed a fifth of those
// added (and 200) — and swaps the new one in. The rebuild runs on the tier's
// thread, where every insert runs too, so none is lost in between.
//
// Thread-safe and lock-free: bits are set with atomic OR.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "cache/cache_key.h"

namespace spillway::cache {

class BloomFilter {
 public:
  BloomFilter(uint64_t expected_entries, double false_positive_rate);

  void insert(const CacheKey& k);
  bool mayContain(const CacheKey& k) const;

  uint64_t bits() const { return bits_; }
  uint32_t hashes() const { return hashes_; }
  // The false-positive rate expected now, from the share of bits set
  // (counted as they are set: reading it costs nothing, whatever the size).
  double estimatedFalsePositiveRate() const;

 private:
  uint64_t bits_;
  uint32_t hashes_;
  std::vector<std::atomic<uint64_t>> words_;
  std::atomic<uint64_t> set_bits_{0};
};

}  // namespace spillway::cache
