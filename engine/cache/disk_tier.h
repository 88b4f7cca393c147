// L2: answers in a SQLite file (WAL mode), kept for days and across
// restarts, under a size cap (least recently used rows go first).
//
// The tier owns its connection and one thread; every statement runs there,
// so the request path never waits on the disk: it asks the Bloom filter
// first (a miss it rules out costs nothing), then posts the lookup and is
// resumed on its own executor with the answer. Writes are queued and
// committed in batches, one transaction each. When the queue is long (a
// slow disk), lookups and writes are skipped and counted instead of queued.
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cache/bloom.h"
#include "cache/entry.h"
#include "cache/task_thread.h"
#include "common/asio_types.h"
#include "common/mutex.h"

struct sqlite3;

namespace spillway::cache {

class DiskTier {
 public:
  struct Settings {
    uint64_t max_bytes = 1ull << 30;
    uint64_t bloom_entries = 10'000'000;
    double bloom_fp_rate = 0.01;
    size_t max_pending = 4096;  // queued tasks beyond which work is skipped
    int64_t grace_ms = 0;       // rows stay this long past their expiry (stale answers)
  };
  // Opens (creating) the file, builds the Bloom filter from its keys and
  // starts the tier's thread.
  static absl::StatusOr<std::unique_ptr<DiskTier>> open(const std::string& path, Settings settings);
  ~DiskTier();  // finishes queued writes, then closes

  // Whether the key may be on disk (the Bloom filter); false is certain.
  bool mayContain(const CacheKey& k) const;
  // Looks the key up on the tier's thread; resumes the caller on its own
  // executor. A miss when the Bloom filter rules it out (no disk read), the
  // queue is full, or the row expired beyond `grace_ms`.
  common::Awaitable<Found> find(CacheKey key, int64_t now_ms, int64_t grace_ms);
  // The same, blocking the calling thread (control plane, tests, benches).
  Found findNow(const CacheKey& key, int64_t now_ms, int64_t grace_ms);
  // Queues a write; never blocks.
  void put(EntryPtr entry);
  // Deletes matching rows ("" matches any; both empty: all) and rebuilds
  // the Bloom filter. Blocks until done; returns the rows deleted.
  uint64_t purge(const std::string& model, const std::string& tenant);
  // Deletes rows expired beyond `grace_ms`, trims to the size cap, and
  // rebuilds the Bloom filter when enough keys went. The tier does this
  // itself once a minute; tests call it directly.
  void maintain(int64_t now_ms, int64_t grace_ms);
  // Blocks until every queued task ran (tests).
  void flush();

  struct Stats {
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t lookups = 0;        // that reached the disk
    uint64_t hits = 0;
    uint64_t bloom_skips = 0;    // misses the Bloom filter answered
    uint64_t writes = 0;
    uint64_t skipped = 0;        // lookups and writes dropped because the queue was full
    uint64_t errors = 0;
    uint64_t evictions = 0;      // rows removed for the size cap
    uint64_t expirations = 0;
    uint64_t bloom_rebuilds = 0;
    double bloom_fp_estimate = 0;
    uint64_t bloom_bits = 0;
  };
  Stats stats() const;
  const std::string& path() const { return path_; }

 private:
  DiskTier(std::string path, Settings settings) : path_(std::move(path)), settings_(settings) {}
  Found lookupOnThread(const CacheKey& key, int64_t now_ms, int64_t grace_ms);
  void writeBatchOnThread(std::vector<EntryPtr> batch);
  uint64_t purgeOnThread(const std::string& model, const std::string& tenant);
  void maintainOnThread(int64_t now_ms, int64_t grace_ms);
  void rebuildBloomOnThread();
  void refreshTotalsOnThread();

  const std::string path_;
  const Settings settings_;
  sqlite3* db_ = nullptr;  // used on the tier's thread only (and in open())
  std::atomic<std::shared_ptr<BloomFilter>> bloom_;

  common::Mutex mu_;
  std::vector<EntryPtr> pending_writes_ ABSL_GUARDED_BY(mu_);

  // Counters (written on the tier's thread, read anywhere).
  std::atomic<uint64_t> entries_{0}, bytes_{0}, lookups_{0}, hits_{0}, bloom_skips_{0}, writes_{0}, skipped_{0},
      errors_{0}, evictions_{0}, expirations_{0}, bloom_rebuilds_{0};
  uint64_t removed_since_build_ = 0;  // tier thread only
  uint64_t added_since_build_ = 0;
  // Last: the thread stops (running what is queued) before the rest goes.
  std::unique_ptr<TaskThread> thread_;
};

}  // namespace spillway::cache
