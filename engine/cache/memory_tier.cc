#include "cache/memory_tier.h"
#include "common/mutex.h"

namespace spillway::cache {

void MemoryTier::dropLocked(Shard& s, std::list<EntryPtr>::iterator it) {
  s.bytes -= (*it)->bytes();
  s.index.erase((*it)->key);
  s.lru.erase(it);
}

Found MemoryTier::get(const CacheKey& key, int64_t now_ms, int64_t grace_ms) {
  Shard& s = shard(key);
  common::MutexLock lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return {};
  const EntryPtr& e = *it->second;
  if (now_ms >= e->expires_ms + grace_ms) {
    dropLocked(s, it->second);
    expirations_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return {*it->second, now_ms >= (*it->second)->expires_ms};
}

void MemoryTier::put(EntryPtr entry) {
  const uint64_t budget = per_shard_.load(std::memory_order_relaxed);
  if (entry->bytes() > budget) return;
  Shard& s = shard(entry->key);
  common::MutexLock lock(s.mu);
  if (auto it = s.index.find(entry->key); it != s.index.end()) dropLocked(s, it->second);
  s.bytes += entry->bytes();
  s.lru.push_front(std::move(entry));
  s.index.emplace(s.lru.front()->key, s.lru.begin());
  while (s.bytes > budget && !s.lru.empty()) {
    dropLocked(s, std::prev(s.lru.end()));
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool MemoryTier::erase(const CacheKey& key) {
  Shard& s = shard(key);
  common::MutexLock lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return false;
  dropLocked(s, it->second);
  return true;
}

uint64_t MemoryTier::purge(const std::string& model, const std::string& tenant) {
  uint64_t n = 0;
  for (Shard& s : shards_) {
    common::MutexLock lock(s.mu);
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      const bool match = (model.empty() || (*it)->model == model) && (tenant.empty() || (*it)->tenant == tenant);
      if (!match) {
        ++it;
        continue;
      }
      auto next = std::next(it);
      dropLocked(s, it);
      it = next;
      ++n;
    }
  }
  return n;
}

MemoryTier::Stats MemoryTier::stats() const {
  Stats st;
  for (const Shard& s : shards_) {
    common::MutexLock lock(s.mu);
    st.entries += s.lru.size();
    st.bytes += s.bytes;
  }
  st.evictions = evictions_.load(std::memory_order_relaxed);
  st.expirations = expirations_.load(std::memory_order_relaxed);
  return st;
}

}  // namespace spillway::cache
