#include "balance/prefix_affinity.h"
#include "common/mutex.h"

#include <bit>
#include <cmath>
#include <vector>

namespace spillway::balance {

PrefixAffinityBalancer::PrefixAffinityBalancer(const v1::Balancing& settings)
    : prefix_weight_(settings.prefix_weight()), load_weight_(settings.load_weight()),
      load_factor_(settings.load_factor()), capacity_(settings.prefix_index_entries()) {
  needs_.prefix_blocks = true;
  needs_.prefix_block_bytes = settings.prefix_block_bytes();
}

size_t PrefixAffinityBalancer::indexedBlocks() const {
  common::MutexLock lock(mu_);
  return index_.size();
}

PickResult PrefixAffinityBalancer::pick(std::span<const upstream::BackendPtr> backends, const PickContext& ctx) {
  const size_t n = backends.size();
  const auto cap = static_cast<double>(boundedLoadCap(backends, ctx, load_factor_));
  if (cap == 0) return {};

  const size_t blocks = ctx.prefix_blocks.size();
  uint32_t matched_buf[64] = {};
  common::MutexLock lock(mu_);
  if (blocks > 0) {
    // Block i counts for a backend only if blocks 0..i all do: walk the
    // chain while any backend still matches.
    uint64_t alive = ~uint64_t{0};
    for (size_t i = 0; i < blocks && alive; ++i) {
      auto it = index_.find(ctx.prefix_blocks[i]);
      alive &= it == index_.end() ? 0 : it->second.mask;
      for (uint64_t m = alive; m; m &= m - 1) matched_buf[std::countr_zero(m)]++;
    }
  }
  size_t best = n;
  double best_score = -1;
  for (size_t i = 0; i < n; ++i) {
    const auto& b = *backends[i];
    if (!eligible(b, ctx)) continue;
    const double inflight = static_cast<double>(b.load());
    if (inflight >= cap) continue;  // bounded load
    const double prefix = blocks == 0 || i >= 64 ? 0.0 : static_cast<double>(matched_buf[i]) / static_cast<double>(blocks);
    const double s = prefix_weight_ * prefix + load_weight_ * (1.0 - inflight / cap);
    if (s > best_score) {
      best = i;
      best_score = s;
    }
  }
  upstream::BackendPtr chosen;
  if (best < n && backends[best]->tryAcquire()) chosen = backends[best];
  if (!chosen) {
    // The best one is full (max_concurrency): anyone with room.
    for (size_t i = 0; i < n && !chosen; ++i) {
      if (eligible(*backends[i], ctx) && backends[i]->tryAcquire()) {
        chosen = backends[i];
        best = i;
        best_score = 0;
      }
    }
    if (!chosen) return {PickOutcome::kAllBusy, nullptr, 0};
  }
  // Remember that the chosen backend now holds this prefix.
  if (best < 64) {
    const uint64_t bit = uint64_t{1} << best;
    for (uint64_t h : ctx.prefix_blocks) {
      auto [it, inserted] = index_.try_emplace(h);
      if (inserted) {
        lru_.push_front(h);
        it->second.lru = lru_.begin();
      } else {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
      }
      it->second.mask |= bit;
    }
    while (index_.size() > capacity_) {
      index_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  return {PickOutcome::kPicked, chosen, best_score};
}

}  // namespace spillway::balance
