// The engine's durable state in one SQLite file (WAL mode): config versions
// and which one is active, the audit log of operator actions, metrics
// history (1-second points for an hour, 1-minute rollups for 7 days) and
// usage per tenant × model at the same two resolutions.
//
// Every write is its own transaction, so a crash (even kill -9) at any
// moment leaves the file consistent with every call that returned. All
// methods are thread-safe (one connection behind a mutex). Times are passed
// in by the caller (milliseconds since the Unix epoch) so tests control them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"

struct sqlite3;

namespace spillway::store {

struct ConfigVersion {
  int64_t id = 0;
  int64_t created_ms = 0;
  std::string author;
  std::string comment;
  std::string diff;     // human-readable, against the version it was based on
  std::string config;   // serialized spillway.v1.Config
  int64_t based_on = 0; // 0 for the first version
  bool active = false;
};

struct AuditEvent {
  int64_t id = 0;
  int64_t ts_ms = 0;
  std::string actor;    // who (token name, "local", "console")
  std::string action;   // "config.apply", "config.rollback", "backend.drain", ...
  std::string target;   // what it acted on
  std::string detail;   // free text (never secrets)
  std::string outcome;  // "ok", "denied", "failed: ..."
};

struct AuditFilter {
  int64_t since_ms = 0;
  std::string action_prefix;  // "" for all
  std::string actor;          // "" for all
  size_t limit = 1000;
};

struct MetricPoint {
  int64_t ts_ms = 0;
  double value = 0;
};

// What one tenant sent to one model: requests, tokens (prompt: the
// gateway's estimate; completion: what a backend generated), requests
// admission turned away, requests answered from the cache.
struct UsageCounts {
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t shed = 0;
  int64_t cache_hits = 0;
  UsageCounts& operator+=(const UsageCounts& o) {
    requests += o.requests;
    prompt_tokens += o.prompt_tokens;
    completion_tokens += o.completion_tokens;
    shed += o.shed;
    cache_hits += o.cache_hits;
    return *this;
  }
};

struct UsageRow {
  std::string tenant;
  std::string model;
  UsageCounts counts;
};

struct UsageFilter {
  int64_t since_ms = 0;
  int64_t until_ms = INT64_MAX;
  std::string tenant;  // "" for all
  std::string model;   // "" for all
};

class Store {
 public:
  // Opens (creating if needed) the database at `path` and migrates it to the
  // current schema. ":memory:" gives a private in-memory store.
  static absl::StatusOr<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schemaVersion();

  // Config versions. addConfigVersion also makes the new version active.
  absl::StatusOr<int64_t> addConfigVersion(const ConfigVersion& v);
  absl::Status setActiveVersion(int64_t id);
  absl::StatusOr<ConfigVersion> configVersion(int64_t id);
  std::optional<ConfigVersion> activeVersion();
  // Newest first, without the config blobs.
  std::vector<ConfigVersion> listConfigVersions(size_t limit = 100);

  // Audit log.
  absl::Status appendAudit(const AuditEvent& e);
  std::vector<AuditEvent> listAudit(const AuditFilter& f = {});

  // Metrics history. appendMetrics records one 1-second sample per series;
  // full minutes are rolled up (mean) into the 1-minute table; 1-second
  // points older than an hour and rollups older than 7 days are dropped.
  absl::Status appendMetrics(int64_t ts_ms, const std::map<std::string, double>& values);
  // Points of `series` in [from_ms, to_ms], from the 1-second table when
  // the range starts within its hour, else from the rollups.
  std::vector<MetricPoint> queryHistory(const std::string& series, int64_t from_ms, int64_t to_ms);
  size_t pointCount(bool rollups);  // for tests and status

  // Usage history. appendUsage adds one second's usage (rows for the same
  // second and tenant × model add up); full minutes are rolled up (summed)
  // into the 1-minute table, with the metrics' retention.
  absl::Status appendUsage(int64_t ts_ms, const std::vector<UsageRow>& rows);
  // Totals per tenant × model over [since_ms, until_ms], most requests
  // first: minutes already rolled up are read from the rollups (a range
  // starting mid-minute there counts that whole minute), the rest from the
  // 1-second table.
  std::vector<UsageRow> queryUsage(const UsageFilter& f);

  static constexpr int64_t kSecondRetentionMs = 3600'000;
  static constexpr int64_t kMinuteRetentionMs = 7 * 24 * 3600'000LL;

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status migrate() ABSL_LOCKS_EXCLUDED(mu_);
  // BEGIN IMMEDIATE, `body`, then COMMIT — or ROLLBACK and body's error.
  absl::Status transactionLocked(absl::FunctionRef<absl::Status()> body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inside a write: `roll_sql` (binding the first not yet rolled minute and
  // the current one) sums or averages `table`_1s into `table`_1m, both
  // tables are pruned to their retention, and `rolled` moves on.
  absl::Status rollUpLocked(const char* roll_sql, std::string_view table, int64_t& rolled, int64_t minute,
                            int64_t ts_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  common::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  int64_t last_rolled_minute_ ABSL_GUARDED_BY(mu_) = 0;
  // Usage minutes before this one are in usage_1m.
  int64_t usage_rolled_minute_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spillway::store
