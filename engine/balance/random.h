// A lock-free random source shared by a policy's callers: each draw is
// splitmix64 of a shared counter, so a fixed seed gives a fixed sequence on
// one thread (tests) and distinct draws on many (one relaxed atomic add).
#pragma once

#include <atomic>
#include <cstdint>

namespace spillway::balance {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class SharedRandom {
 public:
  explicit SharedRandom(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed)); }
  // Uniform in [0, n), n > 0 (Lemire's multiply-shift; the bias is < n / 2^64).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }

 private:
  std::atomic<uint64_t> state_;
};

}  // namespace spillway::balance
