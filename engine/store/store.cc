#include "store/store.h"

#include <sqlite3.h>

#include "common/mutex.h"
#include "common/strings.h"

namespace spillway::store {
namespace {

// Schema migrations, applied in order; PRAGMA user_version records how many
// ran. Never edit a shipped entry: append a new one.
const char* const kMigrations[] = {
    R"sql(
    CREATE TABLE config_versions(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      created_ms INTEGER NOT NULL,
      author TEXT NOT NULL,
      comment TEXT NOT NULL,
      diff TEXT NOT NULL,
      config BLOB NOT NULL,
      based_on INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE active_config(
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      version_id INTEGER NOT NULL REFERENCES config_versions(id));
    CREATE TABLE audit(
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      ts_ms INTEGER NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      target TEXT NOT NULL,
      detail TEXT NOT NULL,
      outcome TEXT NOT NULL);
    CREATE INDEX audit_ts ON audit(ts_ms);
    CREATE TABLE metrics_1s(series TEXT NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL,
                            PRIMARY KEY(series, ts_ms)) WITHOUT ROWID;
    CREATE TABLE metrics_1m(series TEXT NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL,
                            PRIMARY KEY(series, ts_ms)) WITHOUT ROWID;
    CREATE INDEX metrics_1s_ts ON metrics_1s(ts_ms);
    CREATE INDEX metrics_1m_ts ON metrics_1m(ts_ms);
    )sql",
    R"sql(
    CREATE TABLE usage_1s(ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL, model TEXT NOT NULL,
                          requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
                          completion_tokens INTEGER NOT NULL, shed INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
                          PRIMARY KEY(ts_ms, tenant, model)) WITHOUT ROWID;
    CREATE TABLE usage_1m(ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL, model TEXT NOT NULL,
                          requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
                          completion_tokens INTEGER NOT NULL, shed INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
                          PRIMARY KEY(ts_ms, tenant, model)) WITHOUT ROWID;
    )sql",
};

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  sqlite3_stmt* raw() { return s_; }
  int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
  double f64(int c) { return sqlite3_column_double(s_, c); }
  std::string text(int c) {
    const auto* p = sqlite3_column_blob(s_, c);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, c))) : "";
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

absl::Status sqlError(sqlite3* db, std::string_view what) {
  return absl::InternalError(common::strCat("store: ", what, ": ", sqlite3_errmsg(db)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(common::strCat("store: cannot open ", path, ": ", msg));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Store> s(new Store(db));
  common::MutexLock lock(s->mu_);
  // WAL: readers never block the writer, and a crashed process loses no
  // committed transaction. synchronous=NORMAL is crash-safe in WAL mode for
  // process crashes; only an OS crash can lose the last commits.
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    if (auto st = s->exec(pragma); !st.ok()) return st;
  }
  lock.unlock();
  if (auto st = s->migrate(); !st.ok()) return st;
  lock.lock();
  // Minutes up to the newest rollup are in usage_1m (a restart must not
  // read them from the 1-second table, which keeps only the last hour).
  Stmt newest(s->db_, "SELECT MAX(ts_ms) FROM usage_1m");
  if (newest.step() == SQLITE_ROW && sqlite3_column_type(newest.raw(), 0) != SQLITE_NULL) {
    s->usage_rolled_minute_ = newest.i64(0) + 60000;
  }
  return s;
}

Store::~Store() { sqlite3_close(db_); }

absl::Status Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(common::strCat("store: ", msg));
  }
  return absl::OkStatus();
}

absl::Status Store::migrate() {
  common::MutexLock lock(mu_);
  Stmt q(db_, "PRAGMA user_version");
  if (!q.ok() || q.step() != SQLITE_ROW) return sqlError(db_, "reading schema version");
  const int64_t have = q.i64(0);
  const int64_t want = static_cast<int64_t>(std::size(kMigrations));
  if (have > want) {
    return absl::FailedPreconditionError(common::strCat(
        "store: the database has schema version ", have, ", newer than this build knows (", want,
        "); refusing to touch it"));
  }
  for (int64_t v = have; v < want; ++v) {
    auto st = transactionLocked([&] {
      mu_.assertHeld();  // run by transactionLocked, under the lock
      auto done = exec(kMigrations[v]);
      return done.ok() ? exec(common::strCat("PRAGMA user_version = ", v + 1).c_str()) : done;
    });
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status Store::transactionLocked(absl::FunctionRef<absl::Status()> body) {
  if (auto st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  if (auto st = body(); !st.ok()) {
    (void)exec("ROLLBACK");
    return st;
  }
  return exec("COMMIT");
}

int Store::schemaVersion() {
  common::MutexLock lock(mu_);
  Stmt q(db_, "PRAGMA user_version");
  return q.step() == SQLITE_ROW ? static_cast<int>(q.i64(0)) : -1;
}

absl::StatusOr<int64_t> Store::addConfigVersion(const ConfigVersion& v) {
  common::MutexLock lock(mu_);
  int64_t id = 0;
  auto st = transactionLocked([&] {
    mu_.assertHeld();  // run by transactionLocked, under the lock
    Stmt ins(db_,
             "INSERT INTO config_versions(created_ms, author, comment, diff, config, based_on) VALUES(?,?,?,?,?,?)");
    ins.bind(1, v.created_ms).bind(2, v.author).bind(3, v.comment).bind(4, v.diff).bindBlob(5, v.config).bind(6, v.based_on);
    if (ins.step() != SQLITE_DONE) return sqlError(db_, "adding a config version");
    id = sqlite3_last_insert_rowid(db_);
    Stmt act(db_, "INSERT INTO active_config(singleton, version_id) VALUES(1, ?) "
                  "ON CONFLICT(singleton) DO UPDATE SET version_id = excluded.version_id");
    act.bind(1, id);
    if (act.step() != SQLITE_DONE) return sqlError(db_, "activating a config version");
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return id;
}

absl::Status Store::setActiveVersion(int64_t id) {
  common::MutexLock lock(mu_);
  Stmt exists(db_, "SELECT 1 FROM config_versions WHERE id = ?");
  exists.bind(1, id);
  if (exists.step() != SQLITE_ROW) return absl::NotFoundError(common::strCat("no config version ", id));
  Stmt act(db_, "INSERT INTO active_config(singleton, version_id) VALUES(1, ?) "
                "ON CONFLICT(singleton) DO UPDATE SET version_id = excluded.version_id");
  act.bind(1, id);
  if (act.step() != SQLITE_DONE) return sqlError(db_, "activating a config version");
  return absl::OkStatus();
}

absl::StatusOr<ConfigVersion> Store::configVersion(int64_t id) {
  common::MutexLock lock(mu_);
  Stmt q(db_, "SELECT v.id, v.created_ms, v.author, v.comment, v.diff, v.config, v.based_on, "
              "(SELECT version_id FROM active_config) = v.id FROM config_versions v WHERE v.id = ?");
  q.bind(1, id);
  if (q.step() != SQLITE_ROW) return absl::NotFoundError(common::strCat("no config version ", id));
  return ConfigVersion{q.i64(0), q.i64(1), q.text(2), q.text(3), q.text(4), q.text(5), q.i64(6), q.i64(7) != 0};
}

std::optional<ConfigVersion> Store::activeVersion() {
  int64_t id = 0;
  {
    common::MutexLock lock(mu_);
    Stmt q(db_, "SELECT version_id FROM active_config");
    if (q.step() != SQLITE_ROW) return std::nullopt;
    id = q.i64(0);
  }
  auto v = configVersion(id);
  if (!v.ok()) return std::nullopt;
  return *v;
}

std::vector<ConfigVersion> Store::listConfigVersions(size_t limit) {
  common::MutexLock lock(mu_);
  std::vector<ConfigVersion> out;
  Stmt q(db_, "SELECT v.id, v.created_ms, v.author, v.comment, v.diff, v.based_on, "
              "(SELECT version_id FROM active_config) = v.id FROM config_versions v ORDER BY v.id DESC LIMIT ?");
  q.bind(1, static_cast<int64_t>(limit));
  while (q.step() == SQLITE_ROW) {
    out.push_back({q.i64(0), q.i64(1), q.text(2), q.text(3), q.text(4), "", q.i64(5), q.i64(6) != 0});
  }
  return out;
}

absl::Status Store::appendAudit(const AuditEvent& e) {
  common::MutexLock lock(mu_);
  Stmt ins(db_, "INSERT INTO audit(ts_ms, actor, action, target, detail, outcome) VALUES(?,?,?,?,?,?)");
  ins.bind(1, e.ts_ms).bind(2, e.actor).bind(3, e.action).bind(4, e.target).bind(5, e.detail).bind(6, e.outcome);
  if (ins.step() != SQLITE_DONE) return sqlError(db_, "appending to the audit log");
  return absl::OkStatus();
}

std::vector<AuditEvent> Store::listAudit(const AuditFilter& f) {
  common::MutexLock lock(mu_);
  std::vector<AuditEvent> out;
  Stmt q(db_, "SELECT id, ts_ms, actor, action, target, detail, outcome FROM audit "
              "WHERE ts_ms >= ? AND action LIKE ? || '%' AND (? = '' OR actor = ?) ORDER BY id DESC LIMIT ?");
  q.bind(1, f.since_ms).bind(2, f.action_prefix).bind(3, f.actor).bind(4, f.actor).bind(5, static_cast<int64_t>(f.limit));
  while (q.step() == SQLITE_ROW) {
    out.push_back({q.i64(0), q.i64(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6)});
  }
  return out;
}

absl::Status Store::appendMetrics(int64_t ts_ms, const std::map<std::string, double>& values) {
  common::MutexLock lock(mu_);
  const int64_t second = ts_ms - ts_ms % 1000;
  const int64_t minute = ts_ms - ts_ms % 60000;
  return transactionLocked([&] {
    mu_.assertHeld();  // run by transactionLocked, under the lock
    for (const auto& [series, value] : values) {
      Stmt one(db_, "INSERT OR REPLACE INTO metrics_1s(series, ts_ms, value) VALUES(?,?,?)");
      one.bind(1, series).bind(2, second).bind(3, value);
      if (one.step() != SQLITE_DONE) return sqlError(db_, "appending metrics");
    }
    // A new minute started: roll every earlier, not yet rolled minute up.
    if (minute <= last_rolled_minute_) return absl::OkStatus();
    return rollUpLocked("INSERT OR REPLACE INTO metrics_1m(series, ts_ms, value) "
                        "SELECT series, ts_ms - ts_ms % 60000 AS m, AVG(value) FROM metrics_1s "
                        "WHERE ts_ms >= ? AND ts_ms < ? GROUP BY series, m",
                        "metrics", last_rolled_minute_, minute, ts_ms);
  });
}

std::vector<MetricPoint> Store::queryHistory(const std::string& series, int64_t from_ms, int64_t to_ms) {
  common::MutexLock lock(mu_);
  Stmt newest(db_, "SELECT MAX(ts_ms) FROM metrics_1s");
  const int64_t now = newest.step() == SQLITE_ROW ? newest.i64(0) : 0;
  const bool fine = from_ms >= now - kSecondRetentionMs;
  Stmt q(db_, fine ? "SELECT ts_ms, value FROM metrics_1s WHERE series = ? AND ts_ms BETWEEN ? AND ? ORDER BY ts_ms"
                   : "SELECT ts_ms, value FROM metrics_1m WHERE series = ? AND ts_ms BETWEEN ? AND ? ORDER BY ts_ms");
  q.bind(1, series).bind(2, from_ms).bind(3, to_ms);
  std::vector<MetricPoint> out;
  while (q.step() == SQLITE_ROW) out.push_back({q.i64(0), q.f64(1)});
  return out;
}

absl::Status Store::rollUpLocked(const char* roll_sql, std::string_view table, int64_t& rolled, int64_t minute,
                                 int64_t ts_ms) {
  Stmt roll(db_, roll_sql);
  roll.bind(1, rolled).bind(2, minute);
  if (roll.step() != SQLITE_DONE) return sqlError(db_, common::strCat("rolling up ", table));
  for (const auto& [suffix, keep] : {std::pair{"_1s", kSecondRetentionMs}, std::pair{"_1m", kMinuteRetentionMs}}) {
    Stmt prune(db_, common::strCat("DELETE FROM ", table, suffix, " WHERE ts_ms < ?").c_str());
    prune.bind(1, ts_ms - keep);
    if (prune.step() != SQLITE_DONE) return sqlError(db_, common::strCat("pruning ", table, suffix));
  }
  rolled = minute;
  return absl::OkStatus();
}

absl::Status Store::appendUsage(int64_t ts_ms, const std::vector<UsageRow>& rows) {
  common::MutexLock lock(mu_);
  const int64_t second = ts_ms - ts_ms % 1000;
  const int64_t minute = ts_ms - ts_ms % 60000;
  if (rows.empty() && minute <= usage_rolled_minute_) return absl::OkStatus();
  return transactionLocked([&] {
    mu_.assertHeld();  // run by transactionLocked, under the lock
    for (const auto& r : rows) {
      Stmt one(db_, "INSERT INTO usage_1s(ts_ms, tenant, model, requests, prompt_tokens, completion_tokens, shed, "
                    "cache_hits) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(ts_ms, tenant, model) DO UPDATE SET "
                    "requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
                    "completion_tokens = completion_tokens + excluded.completion_tokens, shed = shed + excluded.shed, "
                    "cache_hits = cache_hits + excluded.cache_hits");
      one.bind(1, second).bind(2, r.tenant).bind(3, r.model).bind(4, r.counts.requests);
      one.bind(5, r.counts.prompt_tokens).bind(6, r.counts.completion_tokens).bind(7, r.counts.shed);
      one.bind(8, r.counts.cache_hits);
      if (one.step() != SQLITE_DONE) return sqlError(db_, "appending usage");
    }
    if (minute <= usage_rolled_minute_) return absl::OkStatus();
    return rollUpLocked("INSERT OR REPLACE INTO usage_1m(ts_ms, tenant, model, requests, prompt_tokens, "
                        "completion_tokens, shed, cache_hits) "
                        "SELECT ts_ms - ts_ms % 60000 AS m, tenant, model, SUM(requests), SUM(prompt_tokens), "
                        "SUM(completion_tokens), SUM(shed), SUM(cache_hits) FROM usage_1s "
                        "WHERE ts_ms >= ? AND ts_ms < ? GROUP BY m, tenant, model",
                        "usage", usage_rolled_minute_, minute, ts_ms);
  });
}

std::vector<UsageRow> Store::queryUsage(const UsageFilter& f) {
  common::MutexLock lock(mu_);
  const int64_t boundary = usage_rolled_minute_;
  Stmt q(db_, "SELECT tenant, model, SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(shed), "
              "SUM(cache_hits) FROM ("
              " SELECT * FROM usage_1m WHERE ts_ms < ?1 AND ts_ms + 59999 >= ?2 AND ts_ms <= ?3"
              " UNION ALL"
              " SELECT * FROM usage_1s WHERE ts_ms >= ?1 AND ts_ms >= ?2 AND ts_ms <= ?3)"
              " WHERE (?4 = '' OR tenant = ?4) AND (?5 = '' OR model = ?5)"
              " GROUP BY tenant, model ORDER BY SUM(requests) DESC, tenant, model");
  q.bind(1, boundary).bind(2, f.since_ms).bind(3, f.until_ms).bind(4, f.tenant).bind(5, f.model);
  std::vector<UsageRow> out;
  while (q.step() == SQLITE_ROW) {
    out.push_back({q.text(0), q.text(1), {q.i64(2), q.i64(3), q.i64(4), q.i64(5), q.i64(6)}});
  }
  return out;
}

size_t Store::pointCount(bool rollups) {
  common::MutexLock lock(mu_);
  Stmt q(db_, rollups ? "SELECT COUNT(*) FROM metrics_1m" : "SELECT COUNT(*) FROM metrics_1s");
  return q.step() == SQLITE_ROW ? static_cast<size_t>(q.i64(0)) : 0;
}

}  // namespace spillway::store
