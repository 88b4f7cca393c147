// The config lifecycle on a running engine: diff, dry run, apply with an
// atomic swap (in-flight requests finish on the old config), optimistic
// concurrency, rollback, listener re-bind, backend drain, versions and audit
// in the store, and no lost request across 20 applies under load.
#include "config_lifecycle_test.h"

#include <QtTest>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QTemporaryDir>
#include <atomic>
#include <future>
#include <thread>

#include "config/diff.h"
#include "config/validate.h"
#include "engine.h"
#include "support/json.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

const char* kTwo = kTwoInstantSims;  // backends a and b serving model m

const char* kSlowStream = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant, inter_token_ms: 20, min_output_tokens: 150, max_output_tokens: 150}
)";

v1::Config cfg(const std::string& backends, const std::string& extra = "") {
  return configFromYaml(engineYaml(backends, extra));
}

std::unique_ptr<Engine> start(const v1::Config& c, const std::string& data_dir = "") {
  auto e = Engine::start(c, EngineOptions{data_dir, "test"});
  if (!e.ok()) qFatal("start: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

const std::string kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
const std::string kStream = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";

bool contains(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines) {
    if (l.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

void ConfigLifecycleTest::diffIsFieldByField() {
  auto a = cfg(kTwo);
  auto b = a;
  b.mutable_backends(1)->set_weight(3);
  b.mutable_backends(0)->set_api_key("sk-secret-value");
  auto* c = b.add_backends();
  c->set_name("c");
  c->set_url("http://h:1");
  b.mutable_server()->set_listen("127.0.0.1:9999");
  b.mutable_backends(0)->add_models("m2");
  auto lines = config::diffMessages(a, b);
  QVERIFY(contains(lines, "backends[b].weight: 0 -> 3"));
  QVERIFY(contains(lines, "backends[a].api_key: (changed)"));
  QVERIFY(contains(lines, "backends[c]: added"));
  QVERIFY(contains(lines, "server.listen: \"127.0.0.1:0\" -> \"127.0.0.1:9999\""));
  QVERIFY(contains(lines, "backends[a].models: [\"m\"] -> [\"m\", \"m2\"]"));
  for (const auto& l : lines) QVERIFY2(l.find("sk-secret") == std::string::npos, l.c_str());
  auto d = b;
  d.mutable_backends()->DeleteSubrange(0, 1);
  QVERIFY(contains(config::diffMessages(b, d), "backends[a]: removed"));
  QVERIFY(config::diffMessages(a, a).empty());
}

void ConfigLifecycleTest::dryRunAndNoOpChangeNothing() {
  auto engine = start(cfg(kTwo));
  const int64_t v = engine->configVersion();
  auto proposed = engine->config();
  proposed.mutable_backends(0)->set_weight(5);
  auto dry = engine->applyConfig(proposed, {"op", "try", v, true});
  QVERIFY(dry.ok());
  QCOMPARE(dry->version, v);
  QVERIFY(contains(dry->diff, "backends[a].weight: 1 -> 5"));
  QCOMPARE(engine->config().backends(0).weight(), 1u);
  auto same = engine->applyConfig(engine->config(), {"op", "nothing", v});
  QVERIFY(same.ok());
  QVERIFY(same->diff.empty());
  QCOMPARE(engine->configVersion(), v);
  QCOMPARE(engine->configHistory().size(), size_t{1});
}

void ConfigLifecycleTest::applyRecordsVersionAndAudit() {
  auto engine = start(cfg(kTwo));
  const int64_t v1 = engine->configVersion();
  auto proposed = engine->config();
  proposed.mutable_backends(1)->set_weight(4);
  proposed.mutable_server()->set_threads(1);
  auto r = engine->applyConfig(proposed, {"alice", "heavier b", v1});
  QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
  QVERIFY(r->version > v1);
  QCOMPARE(engine->configVersion(), r->version);
  QCOMPARE(engine->config().backends(1).weight(), 4u);
  QVERIFY(contains(r->notes, "server.threads takes effect on restart"));
  auto history = engine->configHistory();
  QCOMPARE(history.size(), size_t{2});
  QCOMPARE(history[0].author, "alice");
  QCOMPARE(history[0].comment, "heavier b");
  QCOMPARE(history[0].based_on, v1);
  QVERIFY(history[0].active);
  QVERIFY(history[0].diff.find("backends[b].weight: 1 -> 4") != std::string::npos);
  auto events = engine->audit({0, "config.apply", "", 10});
  QCOMPARE(events.size(), size_t{1});
  QCOMPARE(events[0].actor, "alice");
  QCOMPARE(events[0].outcome, "ok");
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
}

void ConfigLifecycleTest::invalidConfigIsRefusedWhole() {
  auto engine = start(cfg(kTwo));
  const int64_t v = engine->configVersion();
  auto proposed = engine->config();
  proposed.mutable_backends(0)->set_url("htp://x");
  proposed.mutable_backends(1)->set_name("a");
  auto r = engine->applyConfig(proposed, {"bob", "broken", v});
  QCOMPARE(r.status().code(), absl::StatusCode::kInvalidArgument);
  std::string msg(r.status().message());
  QVERIFY(msg.find("backends[0].url: unsupported scheme") != std::string::npos);
  QVERIFY(msg.find("backends[1].name: duplicate backend name") != std::string::npos);
  QCOMPARE(engine->configVersion(), v);
  QCOMPARE(engine->config().backends(0).url(), "sim://a");
  auto events = engine->audit({0, "config.apply", "bob", 10});
  QCOMPARE(events.size(), size_t{1});
  QCOMPARE(events[0].outcome, "failed: invalid config");
}

void ConfigLifecycleTest::staleBaseVersionIsRefused() {
  auto engine = start(cfg(kTwo));
  const int64_t v = engine->configVersion();
  auto first = engine->config();
  first.mutable_backends(0)->set_weight(2);
  QVERIFY(engine->applyConfig(first, {"alice", "", v}).ok());
  auto second = engine->config();
  second.mutable_backends(0)->set_weight(7);
  auto r = engine->applyConfig(second, {"bob", "", v});  // based on the version alice replaced
  QCOMPARE(r.status().code(), absl::StatusCode::kFailedPrecondition);
  QVERIFY(std::string(r.status().message()).find("changed since version") != std::string::npos);
  QCOMPARE(engine->config().backends(0).weight(), 2u);
}

void ConfigLifecycleTest::rollbackRestoresAnEarlierVersion() {
  auto engine = start(cfg(kTwo));
  const int64_t v1 = engine->configVersion();
  auto changed = engine->config();
  changed.mutable_backends()->DeleteSubrange(1, 1);
  changed.mutable_pools(0)->mutable_backends()->RemoveLast();
  QVERIFY(engine->applyConfig(changed, {"alice", "drop b", v1}).ok());
  QCOMPARE(engine->backends().size(), size_t{1});
  auto r = engine->rollback(v1, {"carol", "", -1});
  QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
  QCOMPARE(engine->backends().size(), size_t{2});
  QVERIFY(contains(r->diff, "backends[b]: added"));
  QCOMPARE(engine->configHistory()[0].comment, "rollback to v" + std::to_string(v1));
  QCOMPARE(engine->audit({0, "config.rollback", "", 10}).size(), size_t{1});
  QCOMPARE(engine->rollback(999, {"carol"}).status().code(), absl::StatusCode::kNotFound);
  // Both backends serve again.
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(postJson(engine->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"));
  QCOMPARE(seen.size(), size_t{2});
}

void ConfigLifecycleTest::inFlightStreamFinishesOnTheOldConfig() {
  auto engine = start(cfg(kSlowStream));
  auto stream = startStream(engine->port(), "/v1/chat/completions", kStream);
  // ~3 s of stream to go: it is in flight when the new config lands.
  QCOMPARE(engine->totals().in_flight, int64_t(1));
  // Replace the backend serving the stream with a different one.
  auto next = cfg(R"(  - name: z
    url: sim://z
    models: [m]
    sim: {profile: instant}
)");
  auto r = engine->applyConfig(next, {"alice", "swap fleet", engine->configVersion()});
  QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
  auto s = stream.get();
  QVERIFY(s.complete && s.sawDone());
  QCOMPARE(s.headers["x-spillway-backend"], "a");
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"), "z");
}

void ConfigLifecycleTest::listenerMovesWithoutDroppingAcceptedConnections() {
  auto engine = start(cfg(kSlowStream));
  const uint16_t old_port = engine->port();
  auto stream = startStream(old_port, "/v1/chat/completions", kStream);
  QCOMPARE(engine->totals().in_flight, int64_t(1));  // in flight when the listener moves
  const uint16_t wanted = closedPort();
  auto moved = engine->config();
  moved.mutable_server()->set_listen("127.0.0.1:" + std::to_string(wanted));
  auto r = engine->applyConfig(moved, {"alice", "move", -1});
  QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
  QCOMPARE(engine->port(), wanted);
  QVERIFY(stream.get().sawDone());  // accepted on the old listener, finished there
  QCOMPARE(postJson(wanted, "/v1/chat/completions", kChat).status, 200);
  QVERIFY(waitFor([&] { return httpRequest(old_port, "GET", "/healthz", "", {}, 1s).status == 0; }));
  // A listen address that cannot be bound changes nothing: a port another
  // socket listens on (EADDRINUSE on any machine, unlike a foreign address,
  // which binds where net.ipv4.ip_nonlocal_bind is set).
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  QVERIFY(taken >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  QCOMPARE(::bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  QCOMPARE(::listen(taken, 1), 0);
  socklen_t len = sizeof addr;
  QCOMPARE(::getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto bad = engine->config();
  bad.mutable_server()->set_listen("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  const int64_t v = engine->configVersion();
  const auto refused = engine->applyConfig(bad, {"alice", "bad move", -1});
  ::close(taken);
  QCOMPARE(refused.status().code(), absl::StatusCode::kUnavailable);
  QCOMPARE(engine->configVersion(), v);
  QCOMPARE(engine->port(), wanted);
}

void ConfigLifecycleTest::drainedBackendGetsNoNewRequests() {
  auto engine = start(cfg(kTwo));
  QVERIFY(engine->setBackendDrained("a", true, "ops").ok());
  for (int i = 0; i < 4; ++i) QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"), "b");
  QVERIFY(engine->backends()[0].draining);
  auto ready = httpRequest(engine->port(), "GET", "/readyz");
  QCOMPARE(str(jsonObject(ready.body)["backends"].toObject()["a"]), "draining");
  QVERIFY(engine->setBackendDrained("a", false, "ops").ok());
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(postJson(engine->port(), "/v1/chat/completions", kChat).header("x-spillway-backend"));
  QCOMPARE(seen.size(), size_t{2});
  QCOMPARE(engine->setBackendDrained("nope", true, "ops").code(), absl::StatusCode::kNotFound);
  auto events = engine->audit({0, "backend.", "ops", 10});
  QCOMPARE(events.size(), size_t{3});
  QCOMPARE(events[0].outcome, "failed: no such backend");
}

void ConfigLifecycleTest::versionsSurviveARestart() {
  QTemporaryDir dir;
  const std::string data = dir.path().toStdString();
  int64_t applied = 0;
  {
    auto engine = start(cfg(kTwo), data);
    auto c = engine->config();
    c.mutable_backends(0)->set_weight(9);
    applied = engine->applyConfig(c, {"alice", "w9", -1})->version;
  }
  {
    // Restart with the file's config: recorded as a new version, history kept.
    auto engine = start(cfg(kTwo), data);
    auto history = engine->configHistory();
    QCOMPARE(history.size(), size_t{3});
    QCOMPARE(history[1].id, applied);
    QVERIFY(history[0].diff.find("backends[a].weight: 9 -> 1") != std::string::npos);
    QCOMPARE(engine->configVersion(), history[0].id);
  }
  {
    // Same config again: the active version is reused, nothing added.
    auto engine = start(cfg(kTwo), data);
    QCOMPARE(engine->configHistory().size(), size_t{3});
  }
}

void ConfigLifecycleTest::noRequestLostAcrossAHundredApplies() {
  auto engine = start(cfg(kTwo));
  std::atomic<int> ok{0}, failed{0};
  ClientThreads clients;
  for (int c = 0; c < 4; ++c) {
    clients.start([&, c] {
      while (!clients.stopping()) {
        auto r = c % 2 ? streamRequest(engine->port(), "/v1/chat/completions", kStream)
                       : StreamResult{postJson(engine->port(), "/v1/chat/completions", kChat).status, {}, {}, true};
        bool good = r.status == 200 && (c % 2 == 0 || r.sawDone());
        (good ? ok : failed).fetch_add(1);
      }
    });
  }
  QVERIFY(waitFor([&] { return ok.load() > 20; }));
  const auto base = cfg(kTwo);
  constexpr int kApplies = 100;
  for (int i = 0; i < kApplies; ++i) {
    v1::Config next = base;
    if (i % 2) {
      // Swap b for a fresh backend c.
      next.mutable_backends(1)->set_name("c" + std::to_string(i));
      next.mutable_backends(1)->set_url("sim://c" + std::to_string(i));
    }
    next.mutable_backends(0)->set_weight(2 + i % 3);  // every apply changes something
    auto r = engine->applyConfig(next, {"loader", "apply " + std::to_string(i), -1});
    QVERIFY2(r.ok(), std::string(r.status().message()).c_str());
    const int before = ok.load();
    QVERIFY(waitFor([&] { return ok.load() > before + 2; }));  // traffic flows on each version
  }
  clients.stop();
  QCOMPARE(failed.load(), 0);
  QVERIFY(ok.load() > 3 * kApplies);
  QCOMPARE(engine->configHistory(200).size(), size_t{kApplies + 1});
}

void ConfigLifecycleTest::removedBackendsAreReleased() {
  // After a backend leaves the config and its requests are done, nothing
  // keeps it alive: not the workers' pooled connections to it, not its
  // in-process simulator, whose port then stops accepting.
  auto engine = start(cfg(kTwo));
  for (int i = 0; i < 4; ++i) QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
  uint16_t sim_b_port = 0;
  for (const auto& b : engine->backends()) {
    if (b.name == "b") sim_b_port = static_cast<uint16_t>(std::stoi(b.url.substr(b.url.rfind(':') + 1)));
  }
  QVERIFY(sim_b_port != 0);
  QCOMPARE(httpRequest(sim_b_port, "GET", "/healthz").status, 200);
  auto only_a = engine->config();
  only_a.mutable_backends()->DeleteSubrange(1, 1);
  only_a.mutable_pools(0)->mutable_backends()->RemoveLast();
  QVERIFY(engine->applyConfig(only_a, {"t", "drop b", -1}).ok());
  QVERIFY(engine->simulator("b") == nullptr);
  // Requests after the reload prune the old pools on every worker (new
  // connections are spread over the workers).
  for (int i = 0; i < 8; ++i) QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
  QVERIFY(waitFor([&] { return httpRequest(sim_b_port, "GET", "/healthz", "", {}, 1s).status == 0; }));
}

QTEST_APPLESS_MAIN(ConfigLifecycleTest)
