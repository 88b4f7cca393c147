#include "cache/disk_tier.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/strings.h"

namespace spillway::cache {

namespace {

constexpr const char* kSchema = R"sql(
  CREATE TABLE IF NOT EXISTS entries(
    key BLOB PRIMARY KEY,
    model TEXT NOT NULL,
    tenant TEXT NOT NULL,
    form INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS entries_used ON entries(used_ms);
  CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires_ms);
)sql";

// Keys as 16 big-endian bytes (hi then lo): byte order equals hex order.
std::array<unsigned char, 16> keyBytes(const CacheKey& k) {
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<unsigned char>(k.hi >> (56 - 8 * i));
    b[8 + i] = static_cast<unsigned char>(k.lo >> (56 - 8 * i));
  }
  return b;
}

CacheKey keyFromBytes(const void* p, int n) {
  CacheKey k;
  if (n != 16) return k;
  const auto* b = static_cast<const unsigned char*>(p);
  for (int i = 0; i < 8; ++i) {
    k.hi = (k.hi << 8) | b[i];
    k.lo = (k.lo << 8) | b[8 + i];
  }
  return k;
}

// A prepared statement for one use.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() { return s_; }
  bool ok() const { return s_ != nullptr; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DiskTier>> DiskTier::open(const std::string& path, Settings settings) {
  std::unique_ptr<DiskTier> t(new DiskTier(path, settings));
  if (sqlite3_open_v2(path.c_str(), &t->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = t->db_ ? sqlite3_errmsg(t->db_) : "out of memory";
    return absl::UnavailableError(common::strCat("cache: cannot open ", path, ": ", why));
  }
  char* err = nullptr;
  const std::string setup = common::strCat(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=1000;", kSchema);
  if (sqlite3_exec(t->db_, setup.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::UnavailableError(common::strCat("cache: cannot prepare ", path, ": ", why));
  }
  t->refreshTotalsOnThread();
  t->rebuildBloomOnThread();
  DiskTier* raw = t.get();
  t->thread_ = std::make_unique<TaskThread>(settings.max_pending, std::chrono::minutes(1), [raw] {
    raw->maintainOnThread(common::wallClockMs(), raw->settings_.grace_ms);
  });
  return t;
}

DiskTier::~DiskTier() {
  thread_.reset();
  sqlite3_close(db_);
}

bool DiskTier::mayContain(const CacheKey& k) const { return bloom_.load()->mayContain(k); }

common::Awaitable<Found> DiskTier::find(CacheKey key, int64_t now_ms, int64_t grace_ms) {
  if (!mayContain(key)) {
    bloom_skips_.fetch_add(1, std::memory_order_relaxed);
    co_return Found{};
  }
  auto initiate = [this, key, now_ms, grace_ms](auto handler) {
    // Shared: std::function needs a copyable task, the handler is move-only.
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto reply = [h](Found f) {
      auto ex = boost::asio::get_associated_executor(*h);
      boost::asio::post(ex, [h, f = std::move(f)]() mutable { (*h)(std::move(f)); });
    };
    if (!thread_->post([this, reply, key, now_ms, grace_ms] { reply(lookupOnThread(key, now_ms, grace_ms)); }, true)) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      reply(Found{});
    }
  };
  co_return co_await boost::asio::async_initiate<decltype(common::kUseAwaitable), void(Found)>(initiate,
                                                                                               common::kUseAwaitable);
}

Found DiskTier::findNow(const CacheKey& key, int64_t now_ms, int64_t grace_ms) {
  if (!mayContain(key)) {
    bloom_skips_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  return thread_->call([&] { return lookupOnThread(key, now_ms, grace_ms); });
}

Found DiskTier::lookupOnThread(const CacheKey& key, int64_t now_ms, int64_t grace_ms) {
  lookups_.fetch_add(1, std::memory_order_relaxed);
  Stmt st(db_, "SELECT model, tenant, form, body, created_ms, expires_ms, used_ms FROM entries WHERE key = ?");
  if (!st.ok()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  const auto kb = keyBytes(key);
  sqlite3_bind_blob(st.get(), 1, kb.data(), 16, SQLITE_STATIC);
  const int rc = sqlite3_step(st.get());
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE) errors_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  const int64_t expires = sqlite3_column_int64(st.get(), 5);
  if (now_ms >= expires + grace_ms) return {};  // maintenance deletes it
  auto e = std::make_shared<Entry>();
  e->key = key;
  e->model = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
  e->tenant = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));
  e->form = static_cast<Form>(sqlite3_column_int(st.get(), 2));
  e->body.assign(static_cast<const char*>(sqlite3_column_blob(st.get(), 3)),
                 static_cast<size_t>(sqlite3_column_bytes(st.get(), 3)));
  e->created_ms = sqlite3_column_int64(st.get(), 4);
  e->expires_ms = expires;
  const int64_t used = sqlite3_column_int64(st.get(), 6);
  hits_.fetch_add(1, std::memory_order_relaxed);
  if (now_ms - used > 60'000) {
    // Recency for the size cap, at most once a minute per entry (a write per
    // hit would cost more than the hit).
    Stmt touch(db_, "UPDATE entries SET used_ms = ? WHERE key = ?");
    sqlite3_bind_int64(touch.get(), 1, now_ms);
    sqlite3_bind_blob(touch.get(), 2, kb.data(), 16, SQLITE_STATIC);
    sqlite3_step(touch.get());
  }
  return {std::move(e), now_ms >= expires};
}

void DiskTier::put(EntryPtr entry) {
  bool schedule = false;
  {
    common::MutexLock lock(mu_);
    if (thread_->pending() >= settings_.max_pending) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    schedule = pending_writes_.empty();
    pending_writes_.push_back(std::move(entry));
  }
  if (schedule) {
    thread_->post([this] {
      std::vector<EntryPtr> batch;
      {
        common::MutexLock lock(mu_);
        batch.swap(pending_writes_);
      }
      writeBatchOnThread(std::move(batch));
    }, false);
  }
}

void DiskTier::writeBatchOnThread(std::vector<EntryPtr> batch) {
  if (batch.empty()) return;
  sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr);
  {
    Stmt old(db_, "SELECT bytes FROM entries WHERE key = ?");
    Stmt ins(db_,
             "INSERT OR REPLACE INTO entries(key, model, tenant, form, body, created_ms, expires_ms, used_ms, bytes) "
             "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    auto bloom = bloom_.load();
    for (const auto& e : batch) {
      const auto kb = keyBytes(e->key);
      sqlite3_bind_blob(old.get(), 1, kb.data(), 16, SQLITE_STATIC);
      int64_t replaced = -1;
      if (sqlite3_step(old.get()) == SQLITE_ROW) replaced = sqlite3_column_int64(old.get(), 0);
      sqlite3_reset(old.get());
      const int64_t bytes = static_cast<int64_t>(e->bytes());
      sqlite3_bind_blob(ins.get(), 1, kb.data(), 16, SQLITE_STATIC);
      sqlite3_bind_text(ins.get(), 2, e->model.data(), static_cast<int>(e->model.size()), SQLITE_STATIC);
      sqlite3_bind_text(ins.get(), 3, e->tenant.data(), static_cast<int>(e->tenant.size()), SQLITE_STATIC);
      sqlite3_bind_int(ins.get(), 4, static_cast<int>(e->form));
      sqlite3_bind_blob(ins.get(), 5, e->body.data(), static_cast<int>(e->body.size()), SQLITE_STATIC);
      sqlite3_bind_int64(ins.get(), 6, e->created_ms);
      sqlite3_bind_int64(ins.get(), 7, e->expires_ms);
      sqlite3_bind_int64(ins.get(), 8, e->created_ms);
      sqlite3_bind_int64(ins.get(), 9, bytes);
      if (sqlite3_step(ins.get()) != SQLITE_DONE) {
        errors_.fetch_add(1, std::memory_order_relaxed);
      } else {
        writes_.fetch_add(1, std::memory_order_relaxed);
        bloom->insert(e->key);
        ++added_since_build_;
        if (replaced >= 0) {
          bytes_.fetch_sub(static_cast<uint64_t>(replaced), std::memory_order_relaxed);
        } else {
          entries_.fetch_add(1, std::memory_order_relaxed);
        }
        bytes_.fetch_add(static_cast<uint64_t>(bytes), std::memory_order_relaxed);
      }
      sqlite3_reset(ins.get());
    }
  }
  sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (bytes_.load(std::memory_order_relaxed) > settings_.max_bytes) maintainOnThread(common::wallClockMs(), settings_.grace_ms);
}

uint64_t DiskTier::purge(const std::string& model, const std::string& tenant) {
  return thread_->call([&] { return purgeOnThread(model, tenant); });
}

uint64_t DiskTier::purgeOnThread(const std::string& model, const std::string& tenant) {
  Stmt st(db_, "DELETE FROM entries WHERE (?1 = '' OR model = ?1) AND (?2 = '' OR tenant = ?2)");
  sqlite3_bind_text(st.get(), 1, model.data(), static_cast<int>(model.size()), SQLITE_STATIC);
  sqlite3_bind_text(st.get(), 2, tenant.data(), static_cast<int>(tenant.size()), SQLITE_STATIC);
  if (sqlite3_step(st.get()) != SQLITE_DONE) errors_.fetch_add(1, std::memory_order_relaxed);
  const auto n = static_cast<uint64_t>(sqlite3_changes(db_));
  refreshTotalsOnThread();
  rebuildBloomOnThread();
  return n;
}

void DiskTier::maintain(int64_t now_ms, int64_t grace_ms) {
  thread_->call([&] { maintainOnThread(now_ms, grace_ms); });
}

void DiskTier::maintainOnThread(int64_t now_ms, int64_t grace_ms) {
  Stmt expire(db_, "DELETE FROM entries WHERE expires_ms + ? <= ?");
  sqlite3_bind_int64(expire.get(), 1, grace_ms);
  sqlite3_bind_int64(expire.get(), 2, now_ms);
  if (sqlite3_step(expire.get()) == SQLITE_DONE) {
    const auto n = static_cast<uint64_t>(sqlite3_changes(db_));
    expirations_.fetch_add(n, std::memory_order_relaxed);
    removed_since_build_ += n;
  }
  refreshTotalsOnThread();
  if (bytes_.load() > settings_.max_bytes) {
    // Least recently used first, down to 90 % of the cap so the next write
    // does not trim again at once.
    const uint64_t target = settings_.max_bytes / 10 * 9;
    Stmt oldest(db_, "SELECT key, bytes FROM entries ORDER BY used_ms LIMIT 1024");
    Stmt del(db_, "DELETE FROM entries WHERE key = ?");
    uint64_t bytes = bytes_.load();
    sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr);
    while (bytes > target) {
      bool any = false;
      while (bytes > target && sqlite3_step(oldest.get()) == SQLITE_ROW) {
        any = true;
        sqlite3_bind_blob(del.get(), 1, sqlite3_column_blob(oldest.get(), 0), sqlite3_column_bytes(oldest.get(), 0),
                          SQLITE_TRANSIENT);
        sqlite3_step(del.get());
        sqlite3_reset(del.get());
        bytes -= static_cast<uint64_t>(sqlite3_column_int64(oldest.get(), 1));
        evictions_.fetch_add(1, std::memory_order_relaxed);
        ++removed_since_build_;
      }
      sqlite3_reset(oldest.get());
      if (!any) break;
    }
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    refreshTotalsOnThread();
  }
  if (removed_since_build_ * 5 > std::max<uint64_t>(added_since_build_, 1000)) rebuildBloomOnThread();
}

void DiskTier::refreshTotalsOnThread() {
  Stmt st(db_, "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries");
  if (sqlite3_step(st.get()) == SQLITE_ROW) {
    entries_.store(static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0)), std::memory_order_relaxed);
    bytes_.store(static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1)), std::memory_order_relaxed);
  }
}

void DiskTier::rebuildBloomOnThread() {
  // Writes happen on this thread too, so no insert can slip between the
  // scan and the swap.
  auto fresh = std::make_shared<BloomFilter>(settings_.bloom_entries, settings_.bloom_fp_rate);
  Stmt st(db_, "SELECT key FROM entries");
  uint64_t n = 0;
  while (sqlite3_step(st.get()) == SQLITE_ROW) {
    fresh->insert(keyFromBytes(sqlite3_column_blob(st.get(), 0), sqlite3_column_bytes(st.get(), 0)));
    ++n;
  }
  bloom_.store(std::move(fresh));
  bloom_rebuilds_.fetch_add(1, std::memory_order_relaxed);
  removed_since_build_ = 0;
  added_since_build_ = n;
}

void DiskTier::flush() {
  // The batch task (if any) was queued before this one.
  thread_->call([] {});
}

DiskTier::Stats DiskTier::stats() const {
  Stats s;
  s.entries = entries_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.lookups = lookups_.load(std::memory_order_relaxed);
  s.hits = hits_.load(std::memory_order_relaxed);
  s.bloom_skips = bloom_skips_.load(std::memory_order_relaxed);
  s.writes = writes_.load(std::memory_order_relaxed);
  s.skipped = skipped_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  s.evictions = evictions_.load(std::memory_order_relaxed);
  s.expirations = expirations_.load(std::memory_order_relaxed);
  s.bloom_rebuilds = bloom_rebuilds_.load(std::memory_order_relaxed);
  auto b = bloom_.load();
  s.bloom_fp_estimate = b->estimatedFalsePositiveRate();
  s.bloom_bits = b->bits();
  return s;
}

}  // namespace spillway::cache
