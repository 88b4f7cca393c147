// Prefix affinity: requests that share a long prompt prefix (a system
// prompt, a document, a conversation so far) go to a backend that served
// that prefix recently, so its KV cache skips the prefill — without piling
// onto it. Each available backend under the bounded-load cap (as in
// consistent_hash) scores
//   prefix_weight * (leading prefix blocks it served recently / blocks)
//     + load_weight * (1 - in_flight / cap)
// and the best wins (defaults 3 and 2, in the spirit of the Gateway API
// Inference Extension's prefix and queue scorers).
//
// The index maps a block's chained hash to the set of backends that served
// it (a 64-bit mask by pool position: positions past 63 never score on
// prefix, only on load). It holds at most prefix_index_entries blocks and
// forgets the least recently used first, so memory is bounded whatever the
// traffic (about 48 bytes a block).
#pragma once

#include <list>
#include <unordered_map>

#include "balance/balancer.h"
#include "common/mutex.h"

namespace spillway::balance {

class PrefixAffinityBalancer final : public Balancer {
 public:
  explicit PrefixAffinityBalancer(const v1::Balancing& settings);
  PickResult pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) override;
  std::string_view name() const override { return "prefix_affinity"; }
  Needs needs() const override { return needs_; }
  size_t indexedBlocks() const;

 private:
  struct Entry {
    uint64_t mask = 0;
    std::list<uint64_t>::iterator lru;
  };
  const double prefix_weight_;
  const double load_weight_;
  const double load_factor_;
  const size_t capacity_;
  Needs needs_;
  mutable common::Mutex mu_;
  std::unordered_map<uint64_t, Entry> index_ ABSL_GUARDED_BY(mu_);
  std::list<uint64_t> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
};

}  // namespace spillway::balance
