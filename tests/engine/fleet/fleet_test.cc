#include "fleet_test.h"

#include <QProcess>
#include <QtTest>

#include <chrono>

#include "engine.h"
#include "support/redis_server.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

const char* kLimitedSim = R"(  - name: a
    url: sim://a
    models: [m]
    max_concurrency: 8
    sim: {profile: instant}
)";

const std::string kChat = R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]})";

// A replica: the fleet's Redis (the limits' and the registry's), a fast
// heartbeat so the tests wait little, and `extra` YAML.
std::unique_ptr<Engine> replica(uint16_t redis_port, const std::string& extra = "",
                                const char* backends = kLimitedSim) {
  const std::string yaml = engineYaml(backends, "limits:\n  redis: {address: \"127.0.0.1:" + std::to_string(redis_port) +
                                                    "\", timeout_ms: 200}\n" + extra +
                                                    (extra.find("fleet:") == std::string::npos
                                                         ? "fleet: {heartbeat_ms: 100, replica_ttl_ms: 1000}\n"
                                                         : ""));
  auto e = Engine::start(configFromYaml(yaml), EngineOptions{"", "test", false});
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

uint32_t replicas(const Engine& e) {
  auto f = e.fleet();
  return f ? f->replicas : 0;
}

int64_t backendLimit(const Engine& e) { return e.backends().at(0).concurrency_limit; }

// Sends `n` requests alternately to each engine; counts the 200s (every
// answer must be a 200 or a 429).
int admitted(const std::vector<Engine*>& engines, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    auto r = postJson(engines[i % engines.size()]->port(), "/v1/chat/completions", kChat);
    if (r.status == 200) ++ok;
    else if (r.status != 429) qFatal("unexpected status %d: %s", r.status, r.body.c_str());
  }
  return ok;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void FleetTest::replicasCountEachOtherAndDivideBackends() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  auto a = replica(redis.port());
  QVERIFY(waitFor([&] { return a->fleet()->members.size() == 1; }));
  QCOMPARE(backendLimit(*a), int64_t{8});  // alone: the whole configured limit

  auto b = replica(redis.port());
  QVERIFY(waitFor([&] { return replicas(*a) == 2 && replicas(*b) == 2; }));
  QCOMPARE(backendLimit(*a), int64_t{4});  // each replica gets its slice of the backend
  QCOMPARE(backendLimit(*b), int64_t{4});
  auto f = *a->fleet();
  QVERIFY(f.redis_up && f.counted);
  QCOMPARE(f.members.size(), size_t{2});
  QCOMPARE(f.members[0].id, f.replica_id);  // this replica first
  QVERIFY(f.members[0].id != f.members[1].id);
  QCOMPARE(f.members[1].url, b->url());
  QVERIFY(a->metricsText().find("spillway_fleet_replicas{source=\"registry\"} 2") != std::string::npos);
  QVERIFY(a->metricsText().find("spillway_fleet_redis_up 1") != std::string::npos);

  // A replica that stops leaves the registry: its slice goes back.
  b->stop();
  QVERIFY(waitFor([&] { return replicas(*a) == 1; }));
  QCOMPARE(backendLimit(*a), int64_t{8});
}

void FleetTest::limitHoldsAcrossReplicasWithRedisUp() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  const std::string limit = "  global: {requests_per_minute: 30}\n";
  auto a = replica(redis.port(), limit, kTwoInstantSims);
  auto b = replica(redis.port(), limit, kTwoInstantSims);
  const auto t0 = std::chrono::steady_clock::now();
  const int ok = admitted({a.get(), b.get()}, 60);  // twice the limit
  // The limit once across both (its burst is the whole minute's 30), plus
  // what the minute refilled meanwhile (one every 2 s).
  QVERIFY2(ok >= 30 && ok <= 30 + 1 + static_cast<int>(since(t0) / 2), qPrintable(QString("%1 admitted").arg(ok)));
  QCOMPARE(a->admission().redis_fallbacks + b->admission().redis_fallbacks, uint64_t{0});
}

void FleetTest::limitHoldsAcrossReplicasWithRedisDown() {
  uint16_t dead_port = 0;
  {
    RedisServer gone;
    QVERIFY2(gone.start(), qPrintable(gone.error()));
    dead_port = gone.port();
  }  // killed: nothing answers there from the start
  // fleet.replicas says how many share the limit while the registry
  // cannot be read.
  const std::string extra = "  global: {requests_per_minute: 30}\nfleet: {replicas: 2}\n";
  auto a = replica(dead_port, extra, kTwoInstantSims);
  auto b = replica(dead_port, extra, kTwoInstantSims);
  QCOMPARE(replicas(*a), 2u);
  QVERIFY(!a->fleet()->counted);
  const auto t0 = std::chrono::steady_clock::now();
  const int ok = admitted({a.get(), b.get()}, 60);
  // Each replica enforces half: 15 + 15, not 30 + 30 (what two replicas
  // enforcing the whole limit each let through).
  QVERIFY2(ok >= 28 && ok <= 30 + 1 + static_cast<int>(since(t0) / 2), qPrintable(QString("%1 admitted").arg(ok)));
  QVERIFY(a->admission().redis_fallbacks > 0);
  // Its headers speak of this replica's share.
  auto r = postJson(a->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.header("x-ratelimit-limit-requests"), "15");
  QVERIFY(a->metricsText().find("spillway_fleet_replicas{source=\"fallback\"} 2") != std::string::npos);
  QVERIFY(a->metricsText().find("spillway_fleet_redis_up 0") != std::string::npos);
}

void FleetTest::configFollowsEveryReplicaAndLaterOnes() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  auto a = replica(redis.port());
  auto b = replica(redis.port());
  const std::string b_listen = b->config().server().listen();

  // A change on A: a shared section (admission) and one of A's own (server).
  v1::Config next = a->config();
  next.mutable_admission()->mutable_standard()->set_objective_ms(1234);
  next.mutable_server()->set_max_body_bytes(123456);
  ChangeRequest change;
  change.actor = "alice";
  change.comment = "tighter chat objective";
  auto applied = a->applyConfig(next, change);
  QVERIFY2(applied.ok(), std::string(applied.status().message()).c_str());
  bool published = false;
  for (const auto& n : applied->notes) published = published || n.find("published as fleet config v1") != std::string::npos;
  QVERIFY(published);

  // B follows: the shared change, not A's own section, and its listener stays.
  QVERIFY(waitFor([&] { return b->config().admission().standard().objective_ms() == 1234; }));
  QVERIFY(b->config().server().max_body_bytes() != 123456);
  QCOMPARE(b->config().server().listen(), b_listen);
  QCOMPARE(b->fleet()->fleet_version, int64_t{1});
  bool audited = false;
  for (const auto& e : b->audit()) audited = audited || (e.action == "config.fleet" && e.actor == "fleet:alice");
  QVERIFY(audited);
  // B's own answers still come from B's port.
  QCOMPARE(postJson(b->port(), "/v1/chat/completions", kChat).status, 200);

  // A replica started afterwards starts on the fleet's config.
  auto c = replica(redis.port());
  QCOMPARE(c->config().admission().standard().objective_ms(), 1234u);
  QCOMPARE(c->fleet()->fleet_version, int64_t{1});
  QVERIFY(waitFor([&] {
    auto f = a->fleet();
    return f->members.size() == 3 && f->members[1].fleet_version == 1 && f->members[2].fleet_version == 1;
  }));

  // A change on B goes the other way.
  next = b->config();
  next.mutable_admission()->mutable_standard()->set_objective_ms(2345);
  QVERIFY(b->applyConfig(next, change).ok());
  // (A follower applies the config, then records the version it adopted:
  // wait for both.)
  QVERIFY(waitFor([&] {
    return a->config().admission().standard().objective_ms() == 2345 &&
           c->config().admission().standard().objective_ms() == 2345 && a->fleet()->fleet_version == 2;
  }));
}

void FleetTest::redisBackEmptyIsRefilled() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  auto a = replica(redis.port());
  v1::Config next = a->config();
  next.mutable_admission()->mutable_critical()->set_objective_ms(4321);
  QVERIFY(a->applyConfig(next, {}).ok());
  QCOMPARE(a->fleet()->fleet_version, int64_t{1});

  // Redis restarts with nothing (no persistence in the test's server).
  const uint16_t port = redis.port();
  redis.kill();
  RedisServer again;
  QVERIFY2(again.start(port), qPrintable(again.error()));
  QVERIFY(waitFor([&] { return a->fleet()->refills >= 1; }));
  // A replica started now still starts on the fleet's config...
  auto b = replica(port);
  QCOMPARE(b->config().admission().critical().objective_ms(), 4321u);
  QCOMPARE(b->fleet()->fleet_version, int64_t{1});
  // ...and the next change is newer than every version the fleet held.
  next = b->config();
  next.mutable_admission()->mutable_critical()->set_objective_ms(4000);
  QVERIFY(b->applyConfig(next, {}).ok());
  QCOMPARE(b->fleet()->fleet_version, int64_t{2});
  QVERIFY(waitFor([&] { return a->config().admission().critical().objective_ms() == 4000; }));
}

void FleetTest::fileSourceIsNotPublished() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  const std::string file = "fleet: {heartbeat_ms: 100, replica_ttl_ms: 1000, config_source: file}\n";
  auto a = replica(redis.port(), file);
  auto b = replica(redis.port(), file);
  QVERIFY(waitFor([&] { return replicas(*a) == 2; }));  // still one fleet for the shares
  v1::Config next = a->config();
  next.mutable_admission()->mutable_standard()->set_objective_ms(1500);
  ChangeRequest change;
  change.actor = "bob";
  auto applied = a->applyConfig(next, change);
  QVERIFY(applied.ok());
  bool warned = false;
  for (const auto& n : applied->notes) warned = warned || n.find("file wins at the next reload") != std::string::npos;
  QVERIFY(warned);
  QCOMPARE(a->fleet()->published_version, int64_t{-1});
  QCOMPARE(a->fleet()->fleet_version, int64_t{0});
  // Several heartbeats later B still runs its own file.
  const int64_t seen = b->fleet()->members.empty() ? 0 : b->fleet()->members[0].seen_ms;
  QVERIFY(waitFor([&] { auto f = b->fleet(); return !f->members.empty() && f->members[0].seen_ms >= seen + 300; }));
  QVERIFY(b->config().admission().standard().objective_ms() != 1500);
}

void FleetTest::backendSecretsStayOnTheirReplica() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  auto withKey = [](const char* key) {
    return std::string("  - name: a\n    url: sim://a\n    models: [m]\n    api_key: ") + key +
           "\n    sim: {profile: instant}\n";
  };
  const std::string a_backends = withKey("sk-replica-a-secret"), b_backends = withKey("sk-replica-b-secret");
  auto a = replica(redis.port(), "", a_backends.c_str());
  auto b = replica(redis.port(), "", b_backends.c_str());
  v1::Config next = a->config();
  next.mutable_admission()->mutable_standard()->set_objective_ms(1700);
  QVERIFY(a->applyConfig(next, {}).ok());
  QVERIFY(waitFor([&] { return b->config().admission().standard().objective_ms() == 1700; }));
  // B calls its backend with its own key; A's never left A.
  QCOMPARE(b->config().backends(0).api_key(), std::string("sk-replica-b-secret"));
  QCOMPARE(a->config().backends(0).api_key(), std::string("sk-replica-a-secret"));
  QProcess cli;
  cli.start("redis-cli", {"-p", QString::number(redis.port()), "--no-raw", "HGET", "spillway:fleet:config", "config"});
  QVERIFY(cli.waitForFinished(10000));
  const QByteArray stored = cli.readAllStandardOutput();
  QVERIFY2(stored.contains("sim://a"), stored.constData());  // the config is there...
  QVERIFY(!stored.contains("sk-replica-a-secret"));          // ...without the secret
}

QTEST_APPLESS_MAIN(FleetTest)
