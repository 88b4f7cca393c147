#include "cache/response_cache.h"

#include <spdlog/spdlog.h>

#include "common/strings.h"

namespace spillway::cache {

Settings settingsFrom(const v1::Cache& c) {
  Settings s;
  s.mode = c.mode() == "all" ? Mode::kAll : c.mode() == "opt_in" ? Mode::kOptIn : Mode::kDeterministic;
  s.per_tenant = c.scope() != "shared";
  s.memory_ttl_ms = int64_t{c.memory().ttl_seconds()} * 1000;
  s.disk_ttl_ms = int64_t{c.disk().ttl_seconds()} * 1000;
  s.redis_ttl_ms = int64_t{c.redis().ttl_seconds()} * 1000;
  s.stale = !c.stale_disabled();
  s.grace_ms = s.stale ? int64_t{c.stale_grace_seconds()} * 1000 : 0;
  s.max_entry_bytes = c.max_entry_bytes();
  s.coalesce = !c.disable_coalescing();
  for (const auto& mv : c.model_versions()) s.model_versions[mv.model()] = mv.version();
  return s;
}

CacheKey Settings::keyFor(const std::string& model, openai::Endpoint endpoint, std::string_view tenant,
                          std::string_view canonical_text) const {
  auto version = model_versions.find(model);
  return makeKey({model, version == model_versions.end() ? std::string_view() : version->second, endpoint,
                  per_tenant ? tenant : std::string_view()},
                 canonical_text);
}

std::string_view tierName(Tier t) {
  switch (t) {
    case Tier::kMemory: return "memory";
    case Tier::kDisk: return "disk";
    case Tier::kRedis: return "redis";
  }
  return "memory";
}

std::string_view outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kHit: return "hit";
    case Outcome::kMiss: return "miss";
    case Outcome::kBypass: return "bypass";
    case Outcome::kCoalesced: return "coalesced";
    case Outcome::kStale: return "stale";
  }
  return "miss";
}

ResponseCache::ResponseCache(const v1::Cache& config, const std::string& disk_path, metrics::Registry& registry,
                             std::function<int64_t()> clock_ms)
    : clock_(std::move(clock_ms)),
      memory_(config.memory().max_bytes()),
      requests_(registry.counter("spillway_cache_requests_total",
                                 "Cacheable requests and how the cache met them (outcome hit, miss, bypass, coalesced, "
                                 "stale; tier of a hit).",
                                 {"outcome", "tier"})),
      item_hits_(registry.counter("spillway_cache_embedding_items_total",
                                  "Embedding inputs and how the cache met them, each input of a batch on its own "
                                  "(outcome hit, miss).",
                                  {"outcome"}).with({"hit"})),
      item_misses_(registry.counter("spillway_cache_embedding_items_total", "", {"outcome"}).with({"miss"})) {
  settings_.store(std::make_shared<const Settings>(settingsFrom(config)));
  for (int o = 0; o < 5; ++o) {
    for (int t = 0; t < 3; ++t) {
      const auto oc = static_cast<Outcome>(o);
      const bool tiered = oc == Outcome::kHit || oc == Outcome::kStale;
      if (!tiered && t > 0) continue;
      counters_[o][t] = &requests_.with({std::string(outcomeName(oc)), tiered ? std::string(tierName(static_cast<Tier>(t))) : ""});
    }
  }
  const auto s = settings_.load();
  if (!disk_path.empty() && !config.disk().disabled()) {
    DiskTier::Settings ds;
    ds.max_bytes = config.disk().max_bytes();
    ds.bloom_entries = config.bloom().expected_entries();
    ds.bloom_fp_rate = config.bloom().false_positive_rate();
    ds.grace_ms = s->grace_ms;
    auto d = DiskTier::open(disk_path, ds);
    if (d.ok()) {
      disk_ = std::move(*d);
      spdlog::info("cache: disk tier {} ({} entries)", disk_path, disk_->stats().entries);
    } else {
      spdlog::error("cache: no disk tier: {}", std::string(d.status().message()));
    }
  }
  if (const auto& addr = config.redis().address(); !addr.empty()) {
    RedisTier::Settings rs;
    rs.link = common::RedisLink::at(addr, std::chrono::milliseconds(config.redis().timeout_ms()));
    rs.key_prefix = config.redis().key_prefix();
    rs.ttl_ms = s->redis_ttl_ms;
    rs.grace_ms = s->grace_ms;
    redis_ = std::make_unique<RedisTier>(rs);
  }

  auto gauge = [&](std::string name, std::string help, auto fn) {
    gauges_.push_back(registry.scopedCallbackGauge(std::move(name), std::move(help), {"tier"}, [this, fn] {
      std::vector<std::pair<metrics::Labels, double>> out;
      for (const auto& t : stats().tiers) {
        if (t.enabled) out.push_back({{t.tier}, static_cast<double>(fn(t))});
      }
      return out;
    }));
  };
  gauge("spillway_cache_entries", "Answers the cache tier holds.", [](const TierStats& t) { return t.entries; });
  gauge("spillway_cache_bytes", "Bytes of answers the cache tier holds.", [](const TierStats& t) { return t.bytes; });
  gauge("spillway_cache_evicted_entries", "Entries the tier dropped for its size budget, since start.",
        [](const TierStats& t) { return t.evictions; });
  gauge("spillway_cache_tier_errors", "Errors of the tier (failed reads and writes, Redis unreachable), since start.",
        [](const TierStats& t) { return t.errors; });
  gauge("spillway_cache_tier_skipped", "Lookups and writes skipped because the tier was slow or down, since start.",
        [](const TierStats& t) { return t.skipped; });
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_cache_bloom_false_positive_ratio",
      "The disk tier's Bloom filter: expected false-positive rate now, from the share of bits set.", {}, [this] {
        std::vector<std::pair<metrics::Labels, double>> out;
        if (disk_) out.push_back({{}, disk_->stats().bloom_fp_estimate});
        return out;
      }));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_cache_bloom_skipped_lookups", "Disk lookups the Bloom filter answered (certain misses), since start.",
      {}, [this] {
        std::vector<std::pair<metrics::Labels, double>> out;
        if (disk_) out.push_back({{}, static_cast<double>(disk_->stats().bloom_skips)});
        return out;
      }));
  gauges_.push_back(registry.scopedCallbackGauge(
      "spillway_cache_flights", "Coalesced upstream calls in the air now (identical requests sharing one).", {},
      [this] { return std::vector<std::pair<metrics::Labels, double>>{{{}, static_cast<double>(coalescer_.inFlight())}}; }));
}

ResponseCache::~ResponseCache() { gauges_.clear(); }

void ResponseCache::configure(const v1::Cache& config) {
  memory_.setBudget(config.memory().max_bytes());
  settings_.store(std::make_shared<const Settings>(settingsFrom(config)));
}

Found ResponseCache::findMemory(const CacheKey& key, int64_t now_ms, int64_t grace_ms) {
  return memory_.get(key, now_ms, grace_ms);
}

common::Awaitable<Found> ResponseCache::findSlow(CacheKey key, const std::string& model, const std::string& tenant, int64_t now_ms,
                                                 Tier* tier) {
  const auto s = settings_.load();
  if (disk_) {
    Found f = co_await disk_->find(key, now_ms, s->grace_ms);
    if (f && !f.stale) {
      *tier = Tier::kDisk;
      // Promote, keeping the disk entry's expiry within the memory TTL.
      auto copy = std::make_shared<Entry>(*f.entry);
      copy->expires_ms = std::min(copy->expires_ms, now_ms + s->memory_ttl_ms);
      memory_.put(copy);
      co_return f;
    }
    if (f) {
      *tier = Tier::kDisk;
      if (!redis_) co_return f;
    }
  }
  if (redis_) {
    Found f = co_await redis_->find(key, model, tenant, now_ms);
    if (f) {
      *tier = Tier::kRedis;
      if (!f.stale) {
        memory_.put(f.entry);
        if (disk_) disk_->put(f.entry);
      }
      co_return f;
    }
  }
  co_return Found{};
}

Found ResponseCache::findNow(const CacheKey& key, const std::string& model, const std::string& tenant, int64_t now_ms,
                             Tier* tier) {
  const auto s = settings_.load();
  if (Found f = memory_.get(key, now_ms, s->grace_ms)) {
    *tier = Tier::kMemory;
    return f;
  }
  if (disk_) {
    if (Found f = disk_->findNow(key, now_ms, s->grace_ms)) {
      *tier = Tier::kDisk;
      return f;
    }
  }
  if (redis_) {
    if (Found f = redis_->findNow(key, model, tenant, now_ms)) {
      *tier = Tier::kRedis;
      return f;
    }
  }
  return {};
}

void ResponseCache::store(EntryPtr entry) {
  const auto s = settings_.load();
  if (entry->body.size() > s->max_entry_bytes) return;
  stores_.fetch_add(1, std::memory_order_relaxed);
  // Each tier keeps the entry for its own TTL.
  auto in_memory = std::make_shared<Entry>(*entry);
  in_memory->expires_ms = entry->created_ms + s->memory_ttl_ms;
  memory_.put(std::move(in_memory));
  if (disk_) {
    auto on_disk = std::make_shared<Entry>(*entry);
    on_disk->expires_ms = entry->created_ms + s->disk_ttl_ms;
    disk_->put(std::move(on_disk));
  }
  if (redis_) {
    auto shared = std::make_shared<Entry>(*entry);
    shared->expires_ms = entry->created_ms + s->redis_ttl_ms;
    redis_->put(std::move(shared));
  }
}

uint64_t ResponseCache::purge(const std::string& model, const std::string& tenant) {
  uint64_t n = memory_.purge(model, tenant);
  if (disk_) n += disk_->purge(model, tenant);
  if (redis_) n += redis_->purge(model, tenant);
  return n;
}

void ResponseCache::drain() {
  if (disk_) disk_->flush();
  if (redis_) redis_->flush();
}

void ResponseCache::count(Outcome o, Tier t) {
  const int oi = static_cast<int>(o);
  const bool tiered = o == Outcome::kHit || o == Outcome::kStale;
  const int ti = tiered ? static_cast<int>(t) : 0;
  counters_[oi][ti]->inc();
}

ResponseCache::Counters ResponseCache::counters() const {
  Counters c;
  for (int t = 0; t < 3; ++t) c.hits[t] = countOf(Outcome::kHit, t);
  c.misses = countOf(Outcome::kMiss, 0);
  c.coalesced = countOf(Outcome::kCoalesced, 0);
  for (int t = 0; t < 3; ++t) c.stale += countOf(Outcome::kStale, t);
  return c;
}

void ResponseCache::countItems(uint32_t hits, uint32_t misses) {
  if (hits) item_hits_.inc(hits);
  if (misses) item_misses_.inc(misses);
}

ResponseCache::Stats ResponseCache::stats() const {
  Stats st;
  auto sum = [&](Outcome o) { return countOf(o, 0) + countOf(o, 1) + countOf(o, 2); };
  st.hits = sum(Outcome::kHit);
  st.misses = sum(Outcome::kMiss);
  st.bypasses = sum(Outcome::kBypass);
  st.coalesced = sum(Outcome::kCoalesced);
  st.stale = sum(Outcome::kStale);
  st.stores = stores_.load(std::memory_order_relaxed);
  st.item_hits = item_hits_.value();
  st.item_misses = item_misses_.value();
  st.in_flight = coalescer_.inFlight();
  const auto m = memory_.stats();
  st.tiers.push_back({"memory", true, m.entries, m.bytes, countOf(Outcome::kHit, 0), m.evictions, 0, 0, "in process"});
  TierStats d{"disk", disk_ != nullptr};
  if (disk_) {
    const auto ds = disk_->stats();
    d.entries = ds.entries;
    d.bytes = ds.bytes;
    d.hits = countOf(Outcome::kHit, 1);
    d.evictions = ds.evictions;
    d.errors = ds.errors;
    d.skipped = ds.skipped;
    d.detail = disk_->path();
    st.bloom_skips = ds.bloom_skips;
    st.bloom_fp_estimate = ds.bloom_fp_estimate;
    st.bloom_bits = ds.bloom_bits;
  }
  st.tiers.push_back(d);
  TierStats r{"redis", redis_ != nullptr};
  if (redis_) {
    const auto rs = redis_->stats();
    r.hits = countOf(Outcome::kHit, 2);
    r.errors = rs.errors;
    r.skipped = rs.skipped;
    r.detail = common::strCat(redis_->address(), redis_->up() ? "" : " (down)");
  }
  st.tiers.push_back(r);
  return st;
}

}  // namespace spillway::cache
