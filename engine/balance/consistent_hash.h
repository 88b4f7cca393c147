// Consistent hashing with bounded load (Mirrokni, Thorup, Zadimoghaddam):
// each backend owns 100 points on a hash ring (by its name, so the ring is
// the same across restarts and replicas); a request goes to the first point
// clockwise of its key whose backend is available and has fewer than
// ceil((1 + load_factor) * (pool in-flight + 1) / available backends)
// requests in flight. When a backend joins or leaves only the keys on its
// points move; a hot key spills to the next backend instead of piling up.
// Requests without a key go to the least loaded backend.
#pragma once

#include <mutex>
#include <utility>
#include <vector>

#include "balance/balancer.h"

namespace spillway::balance {

class ConsistentHashBalancer final : public Balancer {
 public:
  explicit ConsistentHashBalancer(const v1::Balancing& settings);
  PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) override;
  std::string_view name() const override { return "consistent_hash"; }
  Needs needs() const override { return needs_; }

  static constexpr int kPointsPerBackend = 100;

 private:
  const double load_factor_;
  Needs needs_;
  std::once_flag ring_once_;
  std::vector<std::pair<uint64_t, uint32_t>> ring_;  // (point, backend position), sorted; built once
};

// Stable 64-bit hash of bytes (FNV-1a, then mixed): ring points and keys.
uint64_t hashBytes(std::string_view bytes, uint64_t seed = 0);

}  // namespace spillway::balance
