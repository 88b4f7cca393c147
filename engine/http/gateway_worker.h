// A gateway worker's own state (one per worker thread; only that thread
// touches it): its upstream connection pools, the request parser, metric
// handles looked up once per label set, and the totals it counts, merged on
// read by Gateway::totals(). Included by gateway.cc only.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <unordered_map>

#include "http/gateway.h"
#include "metrics/registry.h"
#include "openai/openai.h"
#include "upstream/connection_pool.h"

namespace spillway::http {

// Identifies a label set by ids instead of strings, so the per-request
// metric lookup allocates nothing. Pool and backend ids are unique for the
// engine's lifetime (never reused after a config reload).
struct MetricKey {
  uint8_t route = 0;
  uint64_t pool = 0;     // PoolRoute::id, 0 for none
  uint64_t backend = 0;  // Backend::id(), 0 for none
  int code = 0;
  bool operator==(const MetricKey&) const = default;
};

struct MetricKeyHash {
  size_t operator()(const MetricKey& k) const {
    uint64_t h = k.pool * 0x9e3779b97f4a7c15ull ^ (k.backend + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
    return static_cast<size_t>(h ^ (static_cast<uint64_t>(k.code) << 8) ^ k.route);
  }
};

// Per-worker state: only its own thread touches it.
struct Gateway::Worker {
  upstream::ConnectionPools connections;
  std::weak_ptr<const RouteTable> pruned_for;  // the table `connections` was last pruned against
  openai::RequestParser parser;
  // Metric children looked up once per label set; afterwards updates are
  // lock-free atomics.
  std::unordered_map<MetricKey, metrics::Counter*, MetricKeyHash> request_counters;
  std::unordered_map<MetricKey, metrics::Histogram*, MetricKeyHash> durations;
  std::unordered_map<MetricKey, metrics::Histogram*, MetricKeyHash> ttfts;

  // Totals every request bumps, sharded per worker (one writer each, so no
  // cache line bounces between cores) and merged on read by totals().
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> shed{0};
  std::atomic<uint64_t> degraded{0};
  std::atomic<uint64_t> requeued{0};  // backends' busy answers put back in the queue, never relayed
  // Proxied requests by endpoint family (Gateway::EndpointFamily).
  std::array<std::atomic<uint64_t>, 4> by_endpoint{};
  metrics::Histogram latency_all{std::make_shared<const std::vector<double>>(metrics::latencyBucketsSeconds())};
  metrics::Histogram ttft_all{std::make_shared<const std::vector<double>>(metrics::latencyBucketsSeconds())};

  // The child for `key`, looked up in the family (under its lock) only the
  // first time this worker sees the label set.
  template <typename T, typename Make>
  T& child(std::unordered_map<MetricKey, T*, MetricKeyHash>& cache, const MetricKey& key, Make make) {
    auto& slot = cache[key];
    if (!slot) {
      slot = &make();
      metric_handles.store(cachedMetricHandles(), std::memory_order_relaxed);
    }
    return *slot;
  }

  // After a reload, drops the pools (and their idle connections, and the
  // backends they keep alive) of backends the new table no longer has, and
  // the cached metric handles of pools and backends it no longer has (every
  // apply makes new pool ids: without this the caches grow per apply).
  void prune(const RouteTablePtr& routes) {
    if (pruned_for.lock() == routes) return;
    pruned_for = routes;
    auto live_backend = [&](uint64_t id) {
      if (id == 0) return true;
      for (const auto& b : routes->backends) {
        if (b->id() == id) return true;
      }
      return false;
    };
    auto live_pool = [&](uint64_t id) {
      if (id == 0) return true;
      for (const auto& [model, p] : routes->pools) {
        if (p.id == id) return true;
      }
      return false;
    };
    connections.retainOnly(live_backend);
    auto prune_cache = [&](auto& cache) {
      for (auto it = cache.begin(); it != cache.end();) {
        it = live_pool(it->first.pool) && live_backend(it->first.backend) ? std::next(it) : cache.erase(it);
      }
    };
    prune_cache(request_counters);
    prune_cache(durations);
    prune_cache(ttfts);
    metric_handles.store(cachedMetricHandles(), std::memory_order_relaxed);
  }
  std::atomic<size_t> metric_handles{0};  // cachedMetricHandles(), readable from any thread
  size_t cachedMetricHandles() const { return request_counters.size() + durations.size() + ttfts.size(); }
};

}  // namespace spillway::http
