// The response cache: its tiers (memory L1, SQLite L2, optional Redis L3),
// the coalescer, the settings from config, and its statistics. Lives as
// long as the engine (a config apply reconfigures it; entries survive),
// and is shared by every routing table. Thread-safe.
//
// Lookups fall through L1 → L2 → L3 (the Bloom filter first for L2) and
// promote what they find to the tiers above; stores go to L1 at once and to
// L2/L3 through their own threads, off the response path.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cache/cache_key.h"
#include "cache/coalescer.h"
#include "cache/disk_tier.h"
#include "cache/entry.h"
#include "cache/memory_tier.h"
#include "cache/redis_tier.h"
#include "common/asio_types.h"
#include "common/clock.h"
#include "metrics/registry.h"
#include "spillway/v1/config.pb.h"

namespace spillway::cache {

enum class Mode { kDeterministic, kAll, kOptIn };

struct Settings {
  Mode mode = Mode::kDeterministic;
  bool per_tenant = true;
  int64_t memory_ttl_ms = 3'600'000;
  int64_t disk_ttl_ms = 7 * 86'400'000ll;
  int64_t redis_ttl_ms = 3'600'000;
  int64_t grace_ms = 600'000;
  bool stale = true;
  size_t max_entry_bytes = 1 << 20;
  bool coalesce = true;
  std::map<std::string, std::string> model_versions;

  // Whether a request is cached without an opt-in header.
  bool cachesByDefault(bool deterministic) const {
    return mode == Mode::kAll || (mode == Mode::kDeterministic && deterministic);
  }
  // A request's key under these settings: the model's configured version,
  // and `tenant` only when entries are per tenant.
  CacheKey keyFor(const std::string& model, openai::Endpoint endpoint, std::string_view tenant,
                  std::string_view canonical_text) const;
};
Settings settingsFrom(const v1::Cache& c);

enum class Tier { kMemory, kDisk, kRedis };
std::string_view tierName(Tier t);

// How a request met the cache (x-spillway-cache).
enum class Outcome { kHit, kMiss, kBypass, kCoalesced, kStale };
std::string_view outcomeName(Outcome o);

class ResponseCache {
 public:
  // `disk_path` "" (or cache.disk.disabled): no disk tier. A disk or Redis
  // tier that cannot be opened is logged and left out; the cache works
  // without it.
  // `clock_ms` (tests) replaces the wall clock for ages and expiry.
  ResponseCache(const v1::Cache& config, const std::string& disk_path, metrics::Registry& registry,
                std::function<int64_t()> clock_ms = {});
  ~ResponseCache();

  // Live settings from a config apply (tier locations take effect on restart).
  void configure(const v1::Cache& config);
  std::shared_ptr<const Settings> settings() const { return settings_.load(); }

  // Now, in Unix milliseconds: what entries' ages and expiries are measured in.
  int64_t nowMs() const { return clock_ ? clock_() : common::wallClockMs(); }

  // L1 only (the request path's synchronous step).
  Found findMemory(const CacheKey& key, int64_t now_ms, int64_t grace_ms);
  // L2 then L3, promoting a find to the tiers above; `tier` says where it
  // was found.
  // `model` and `tenant` locate the entry in Redis.
  common::Awaitable<Found> findSlow(CacheKey key, const std::string& model, const std::string& tenant, int64_t now_ms,
                                    Tier* tier);
  bool hasSlowTiers() const { return disk_ != nullptr || redis_ != nullptr; }
  // Every tier, blocking (control plane: lookups for an operator).
  Found findNow(const CacheKey& key, const std::string& model, const std::string& tenant, int64_t now_ms, Tier* tier);
  // A complete answer: to L1 now, to L2/L3 on their threads.
  void store(EntryPtr entry);
  // Drops entries of a model and/or tenant ("" matches any; both "": all).
  uint64_t purge(const std::string& model, const std::string& tenant);
  // Runs every lookup and write the slower tiers have queued. The engine
  // calls it once its worker threads stopped and before their io_contexts
  // go: a queued lookup answers by posting to its requester's executor.
  void drain();

  Coalescer& coalescer() { return coalescer_; }
  void count(Outcome o, Tier t = Tier::kMemory);
  // Embedding inputs answered from the cache and sent upstream (embedding_items.h).
  void countItems(uint32_t hits, uint32_t misses);
  // (hits, misses) of embedding inputs since start: cheap, no tier is asked.
  std::pair<uint64_t, uint64_t> itemCounts() const { return {item_hits_.value(), item_misses_.value()}; }

  struct TierStats {
    std::string tier;
    bool enabled = false;
    uint64_t entries = 0, bytes = 0, hits = 0, evictions = 0, errors = 0, skipped = 0;
    std::string detail;  // where it lives
  };
  struct Stats {
    bool enabled = true;
    std::vector<TierStats> tiers;
    uint64_t hits = 0, misses = 0, bypasses = 0, coalesced = 0, stale = 0, stores = 0;
    uint64_t item_hits = 0, item_misses = 0;  // embedding inputs, each on its own
    uint64_t bloom_skips = 0;
    double bloom_fp_estimate = 0;
    uint64_t bloom_bits = 0;
    uint64_t in_flight = 0;  // coalesced flights in the air
  };
  Stats stats() const;
  // Just the request counters (cheap: no tier is asked).
  struct Counters {
    std::array<uint64_t, 3> hits{};  // by tier
    uint64_t misses = 0, coalesced = 0, stale = 0;
  };
  Counters counters() const;

  DiskTier* disk() { return disk_.get(); }
  RedisTier* redis() { return redis_.get(); }

 private:
  const std::function<int64_t()> clock_;
  std::atomic<std::shared_ptr<const Settings>> settings_;
  MemoryTier memory_;
  std::unique_ptr<DiskTier> disk_;
  std::unique_ptr<RedisTier> redis_;
  Coalescer coalescer_;
  metrics::Family<metrics::Counter>& requests_;
  // [outcome][tier] (null where the tier does not apply): the one count
  // per request, read back for stats.
  std::array<std::array<metrics::Counter*, 3>, 5> counters_{};
  uint64_t countOf(Outcome o, int tier) const {
    const metrics::Counter* c = counters_[static_cast<int>(o)][tier];
    return c ? c->value() : 0;
  }
  metrics::Counter& item_hits_;
  metrics::Counter& item_misses_;
  std::atomic<uint64_t> stores_{0};
  std::vector<metrics::Registry::Registration> gauges_;
};

}  // namespace spillway::cache
