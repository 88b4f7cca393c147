#include "balance/consistent_hash.h"

#include <algorithm>
#include <cmath>

#include "balance/random.h"

namespace spillway::balance {

uint64_t hashBytes(std::string_view bytes, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed);
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return mix64(h);
}

ConsistentHashBalancer::ConsistentHashBalancer(const v1::Balancing& settings) : load_factor_(settings.load_factor()) {
  needs_.hash_key = true;
  needs_.key = settings.hash_key() == v1::HASH_KEY_UNSPECIFIED ? v1::CHAIN : settings.hash_key();
  needs_.header_name = settings.header_name();
  needs_.cookie_name = settings.cookie_name();
}

PickResult ConsistentHashBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  // The pool's backends never change for one balancer (a new config builds
  // a new one), so the ring is built on first use and read without locks.
  std::call_once(ring_once_, [&] {
    ring_.reserve(backends.size() * kPointsPerBackend);
    for (size_t i = 0; i < backends.size(); ++i) {
      for (int p = 0; p < kPointsPerBackend; ++p) {
        ring_.emplace_back(hashBytes(backends[i]->name(), static_cast<uint64_t>(p)), static_cast<uint32_t>(i));
      }
    }
    std::sort(ring_.begin(), ring_.end());
  });
  const int64_t cap = boundedLoadCap(backends, ctx, load_factor_);
  if (cap == 0) return {};

  if (!ctx.has_hash_key) {
    // No key: the least loaded backend with room.
    const upstream::BackendPtr* best = nullptr;
    for (const auto& b : backends) {
      if (!eligible(*b, ctx)) continue;
      if (!best || b->load() < (*best)->load()) best = &b;
    }
    size_t order[1] = {static_cast<size_t>(best - backends.data())};
    auto r = acquireInOrder(backends, order, ctx);
    if (r.outcome == PickOutcome::kPicked) return r;
    std::vector<size_t> all(backends.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return acquireInOrder(backends, all, ctx);
  }

  // Walk clockwise; each backend is considered once, at its first point.
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(ctx.hash_key, uint32_t{0}));
  uint64_t seen_small = 0;  // positions < 64
  std::vector<bool> seen_big;
  if (backends.size() > 64) seen_big.resize(backends.size());
  for (size_t step = 0; step < ring_.size(); ++step, ++it) {
    if (it == ring_.end()) it = ring_.begin();
    const uint32_t i = it->second;
    if (i < 64) {
      if (seen_small & (uint64_t{1} << i)) continue;
      seen_small |= uint64_t{1} << i;
    } else {
      if (seen_big[i]) continue;
      seen_big[i] = true;
    }
    const auto& b = backends[i];
    if (!eligible(*b, ctx) || b->load() >= cap) continue;
    if (b->tryAcquire()) return {PickOutcome::kPicked, b, static_cast<double>(cap)};
  }
  return {PickOutcome::kAllBusy, nullptr, 0};
}

}  // namespace spillway::balance
