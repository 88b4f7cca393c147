// L1: answers in memory, in shards (a lock each, so workers rarely meet),
// each a least-recently-used list under a byte budget, entries fresh for
// their TTL and kept as stale answers for the grace after it.
//
// Thread-safe. A lookup or store takes one shard's lock for a hash lookup
// and a list splice; nothing is allocated on a hit.
#pragma once

#include <array>
#include <atomic>
#include <list>
#include <string>
#include <unordered_map>

#include "cache/entry.h"
#include "common/mutex.h"

namespace spillway::cache {

class MemoryTier {
 public:
  explicit MemoryTier(uint64_t max_bytes) { setBudget(max_bytes); }

  void setBudget(uint64_t max_bytes) { per_shard_ = std::max<uint64_t>(1, max_bytes / kShards); }
  // A fresh entry, or a stale one within `grace_ms` past its expiry; an
  // entry further past is dropped.
  Found get(const CacheKey& key, int64_t now_ms, int64_t grace_ms);
  // Stores (or replaces) an entry, evicting the least recently used ones
  // beyond the budget. An entry larger than a shard's budget is not kept.
  void put(EntryPtr entry);
  bool erase(const CacheKey& key);
  // Drops entries of `model` and/or `tenant` ("" matches any); both empty
  // drops everything. Returns how many went.
  uint64_t purge(const std::string& model, const std::string& tenant);

  struct Stats {
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t evictions = 0;  // for the byte budget
    uint64_t expirations = 0;
  };
  Stats stats() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable common::Mutex mu;
    std::list<EntryPtr> lru ABSL_GUARDED_BY(mu);  // most recent first
    std::unordered_map<CacheKey, std::list<EntryPtr>::iterator, CacheKeyHash> index ABSL_GUARDED_BY(mu);
    uint64_t bytes ABSL_GUARDED_BY(mu) = 0;
  };
  Shard& shard(const CacheKey& k) { return shards_[(k.hi >> 60) % kShards]; }
  void dropLocked(Shard& s, std::list<EntryPtr>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);

  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> per_shard_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> expirations_{0};
};

}  // namespace spillway::cache
