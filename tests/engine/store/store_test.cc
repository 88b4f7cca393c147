// The SQLite store: migrations, config versions, audit log, metrics
// rollups and retention, and crash safety under kill -9.
#include "store_test.h"

#include <QtTest>

#include <QProcess>
#include <QTemporaryDir>
#include <signal.h>
#include <sqlite3.h>

#include "store/store.h"

using namespace spillway::store;

namespace {

std::unique_ptr<Store> openOrDie(const std::string& path) {
  auto s = Store::open(path);
  if (!s.ok()) qFatal("open: %s", std::string(s.status().message()).c_str());
  return std::move(*s);
}

// Child mode for the crash test: append audit rows forever, printing each
// committed id, until killed.
int writerMain(const char* path) {
  auto s = Store::open(path);
  if (!s.ok()) return 2;
  for (int64_t i = 1;; ++i) {
    if (!(*s)->appendAudit({0, i, "writer", "test.write", "t", std::string(200, 'x'), "ok"}).ok()) return 3;
    if (i % 3 == 0) (void)(*s)->addConfigVersion({0, i, "writer", "c", "d", std::string(1000, 'c'), 0, false});
    std::printf("%lld\n", static_cast<long long>(i));
    std::fflush(stdout);
  }
}

}  // namespace

void StoreTest::migratesAFreshFileAndReopens() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("s.db").toStdString();
  {
    auto s = openOrDie(path);
    QCOMPARE(s->schemaVersion(), 2);
    QVERIFY(s->appendAudit({0, 5, "a", "config.apply", "t", "d", "ok"}).ok());
  }
  {
    auto again = openOrDie(path);
    QCOMPARE(again->schemaVersion(), 2);
    QCOMPARE(again->listAudit().size(), size_t{1});
  }
  // A file from before the usage history (schema 1) gains it and keeps the rest.
  sqlite3* db = nullptr;
  QCOMPARE(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  QCOMPARE(sqlite3_exec(db, "DROP TABLE usage_1s; DROP TABLE usage_1m; PRAGMA user_version = 1", nullptr, nullptr,
                        nullptr),
           SQLITE_OK);
  sqlite3_close(db);
  auto old = openOrDie(path);
  QCOMPARE(old->schemaVersion(), 2);
  QCOMPARE(old->listAudit().size(), size_t{1});
  QVERIFY(old->appendUsage(1000, {{"t", "m", {1, 0, 0, 0, 0}}}).ok());
  QCOMPARE(old->queryUsage({}).size(), size_t{1});
}

void StoreTest::refusesANewerSchema() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("s.db").toStdString();
  { openOrDie(path); }
  sqlite3* db = nullptr;
  QCOMPARE(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  QCOMPARE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = Store::open(path);
  QVERIFY(!s.ok());
  QVERIFY(std::string(s.status().message()).find("schema version 99") != std::string::npos);
}

void StoreTest::configVersionsAndActivation() {
  auto s = openOrDie(":memory:");
  QVERIFY(!s->activeVersion());
  auto v1 = s->addConfigVersion({0, 1000, "alice", "first", "", "cfg1", 0, false});
  auto v2 = s->addConfigVersion({0, 2000, "bob", "more weight", "backends[0].weight: 1 -> 3", "cfg2", *v1, false});
  QVERIFY(v1.ok() && v2.ok());
  QCOMPARE(s->activeVersion()->id, *v2);
  QCOMPARE(s->activeVersion()->config, "cfg2");
  auto list = s->listConfigVersions();
  QCOMPARE(list.size(), size_t{2});
  QCOMPARE(list[0].id, *v2);  // newest first
  QVERIFY(list[0].active && !list[1].active);
  QCOMPARE(list[0].based_on, *v1);
  QCOMPARE(list[0].diff, "backends[0].weight: 1 -> 3");
  QVERIFY(list[0].config.empty());  // listing leaves the blobs out
  QVERIFY(s->setActiveVersion(*v1).ok());
  QCOMPARE(s->activeVersion()->config, "cfg1");
  QCOMPARE(s->setActiveVersion(42).code(), absl::StatusCode::kNotFound);
  QCOMPARE(s->configVersion(42).status().code(), absl::StatusCode::kNotFound);
}

void StoreTest::auditLogFilters() {
  auto s = openOrDie(":memory:");
  QVERIFY(s->appendAudit({0, 100, "alice", "config.apply", "v2", "comment", "ok"}).ok());
  QVERIFY(s->appendAudit({0, 200, "bob", "backend.drain", "sim-a", "", "ok"}).ok());
  QVERIFY(s->appendAudit({0, 300, "eve", "config.apply", "v3", "", "denied"}).ok());
  QCOMPARE(s->listAudit().size(), size_t{3});
  QCOMPARE(s->listAudit()[0].actor, "eve");  // newest first
  QCOMPARE(s->listAudit({0, "config.", "", 100}).size(), size_t{2});
  QCOMPARE(s->listAudit({0, "", "bob", 100}).size(), size_t{1});
  QCOMPARE(s->listAudit({250, "", "", 100}).size(), size_t{1});
  QCOMPARE(s->listAudit({0, "", "", 1}).size(), size_t{1});
}

void StoreTest::metricsRollUpAndStayBounded() {
  auto s = openOrDie(":memory:");
  const int64_t t0 = 1'700'000'000'000 - 1'700'000'000'000 % 60000;  // a minute boundary
  // Three minutes of 1-second samples: value = minute index.
  for (int64_t sec = 0; sec < 180; ++sec) {
    QVERIFY(s->appendMetrics(t0 + sec * 1000, {{"rps", static_cast<double>(sec / 60)}, {"p99", 0.5}}).ok());
  }
  QCOMPARE(s->pointCount(false), size_t{360});
  QCOMPARE(s->pointCount(true), size_t{4});  // two full minutes rolled, two series
  auto minutes = s->queryHistory("rps", t0 - Store::kSecondRetentionMs * 2, t0 + 3 * 60000);
  QCOMPARE(minutes.size(), size_t{2});
  QCOMPARE(minutes[0].value, 0.0);
  QCOMPARE(minutes[1].value, 1.0);
  QCOMPARE(minutes[1].ts_ms, t0 + 60000);
  // Two hours later: the 1-second table keeps at most an hour.
  for (int64_t sec = 0; sec < 5; ++sec) {
    QVERIFY(s->appendMetrics(t0 + 2 * Store::kSecondRetentionMs + sec * 1000, {{"rps", 9}}).ok());
  }
  QVERIFY(s->pointCount(false) <= 5 + 2);
  QVERIFY(s->pointCount(true) >= 6);  // minute 2 got rolled up too
  // Eight days later the old rollups are gone as well.
  QVERIFY(s->appendMetrics(t0 + 8 * 24 * 3600'000LL, {{"rps", 1}}).ok());
  QVERIFY(s->queryHistory("rps", t0 - 1, t0 + 3 * 60000).empty());
}

void StoreTest::queriesPickTheRightResolution() {
  auto s = openOrDie(":memory:");
  const int64_t t0 = 1'800'000'000'000;
  for (int64_t sec = 0; sec < 10; ++sec) QVERIFY(s->appendMetrics(t0 + sec * 1000, {{"x", double(sec)}}).ok());
  auto recent = s->queryHistory("x", t0, t0 + 10000);
  QCOMPARE(recent.size(), size_t{10});
  QCOMPARE(recent[3].value, 3.0);
  QVERIFY(s->queryHistory("other", t0, t0 + 10000).empty());
}

void StoreTest::usageAddsUpAcrossResolutionsAndRestarts() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("usage.db").toStdString();
  const int64_t t0 = 1'700'000'000'000 - 1'700'000'000'000 % 60000;  // a minute boundary
  {
    auto s = openOrDie(path);
    // Three minutes: each second tenant a sends 2 requests to m, b one to n
    // (shed); every tenth second a also gets a cache hit on n.
    for (int64_t sec = 0; sec < 180; ++sec) {
      std::vector<UsageRow> rows = {{"a", "m", {2, 20, 10, 0, 0}}, {"b", "n", {1, 5, 0, 1, 0}}};
      if (sec % 10 == 0) rows.push_back({"a", "n", {1, 3, 0, 0, 1}});
      QVERIFY(s->appendUsage(t0 + sec * 1000, rows).ok());
    }
    // The same second twice adds up.
    QVERIFY(s->appendUsage(t0 + 179 * 1000 + 500, {{"a", "m", {1, 1, 1, 0, 0}}}).ok());
    auto all = s->queryUsage({});
    QCOMPARE(all.size(), size_t{3});
    QCOMPARE(all[0].tenant, std::string("a"));  // most requests first
    QCOMPARE(all[0].model, std::string("m"));
    QCOMPARE(all[0].counts.requests, int64_t{361});
    QCOMPARE(all[0].counts.prompt_tokens, int64_t{3601});
    QCOMPARE(all[0].counts.completion_tokens, int64_t{1801});
    QCOMPARE(all[1].counts.shed, int64_t{180});
    QCOMPARE(all[2].counts.cache_hits, int64_t{18});
    // Filters, and a range inside the 1-second table (the last minute, not rolled yet).
    auto b = s->queryUsage({t0 + 120'000, t0 + 179'999, "b", ""});
    QCOMPARE(b.size(), size_t{1});
    QCOMPARE(b[0].counts.requests, int64_t{60});
    QCOMPARE(s->queryUsage({0, INT64_MAX, "", "n"}).size(), size_t{2});
    QVERIFY(s->queryUsage({0, INT64_MAX, "nobody", ""}).empty());
  }
  // Reopened two hours later: the 1-second rows are pruned at the next
  // write, the rollups still answer, to the minute.
  auto s = openOrDie(path);
  QVERIFY(s->appendUsage(t0 + 2 * Store::kSecondRetentionMs, {{"a", "m", {1, 0, 0, 0, 0}}}).ok());
  auto all = s->queryUsage({});
  QCOMPARE(all[0].counts.requests, int64_t{362});
  auto first_minute = s->queryUsage({t0, t0 + 59'999, "a", "m"});
  QCOMPARE(first_minute.size(), size_t{1});
  QCOMPARE(first_minute[0].counts.requests, int64_t{120});
}

void StoreTest::survivesKill9DuringWrites() {
  QTemporaryDir dir;
  const QString path = dir.filePath("crash.db");
  for (int round = 0; round < 3; ++round) {
    QProcess writer;
    writer.start(QCoreApplication::applicationFilePath(), {"writer", path});
    QVERIFY(writer.waitForStarted());
    long long last = 0;
    const long long target = 200 + round * 137;  // kill at a different moment each round
    while (last < target && writer.waitForReadyRead(10000)) {
      while (writer.canReadLine()) last = writer.readLine().trimmed().toLongLong();
    }
    QVERIFY(last >= target);
    ::kill(static_cast<pid_t>(writer.processId()), SIGKILL);
    QVERIFY(writer.waitForFinished(10000));
    while (writer.canReadLine()) last = std::max(last, writer.readLine().trimmed().toLongLong());

    auto s = openOrDie(path.toStdString());
    sqlite3* db = nullptr;
    QCOMPARE(sqlite3_open(path.toStdString().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
    QCOMPARE(sqlite3_step(st), SQLITE_ROW);
    QCOMPARE(QString(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), QString("ok"));
    sqlite3_finalize(st);
    sqlite3_close(db);
    // Every write the writer reported as done is there.
    auto rows = s->listAudit({0, "test.write", "", 1});
    QVERIFY(!rows.empty());
    QVERIFY2(rows[0].ts_ms >= last, qPrintable(QString("last reported %1, newest stored %2").arg(last).arg(rows[0].ts_ms)));
    QVERIFY(s->activeVersion().has_value());
  }
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "writer") return writerMain(argv[2]);
  QCoreApplication app(argc, argv);
  StoreTest t;
  return QTest::qExec(&t, argc, argv);
}
