#include "cache_gateway_test.h"

#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "common/sha256.h"
#include "engine.h"
#include "sim/sim_server.h"
#include "support/json.h"
#include "support/redis_server.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

std::unique_ptr<Engine> start(const std::string& yaml, EngineOptions options = {"", "test", false}) {
  auto e = Engine::start(configFromYaml(yaml), std::move(options));
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

const char* kOneSim = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant}
)";

std::string chat(const std::string& content, const std::string& extra = R"("temperature":0)") {
  return R"({"model":"m","max_tokens":16,"messages":[{"role":"user","content":")" + content + R"("}],)" + extra + "}";
}

HttpResult post(uint16_t port, const std::string& body, Headers headers = {}) {
  headers.push_back({"Content-Type", "application/json"});
  return httpRequest(port, "POST", "/v1/chat/completions", body, headers);
}

uint64_t arrivals(Engine& e, const std::string& backend = "a") {
  const auto c = e.simulator(backend)->counters();
  return c.completed + c.injected_failures + c.rejected_busy;
}

std::string content(const HttpResult& r) {
  return str(jsonObject(r.body)[u"choices"][0][u"message"][u"content"]);
}

std::string streamedContent(const StreamResult& r) {
  std::string out;
  for (const auto& ev : r.events) {
    if (ev.data == "[DONE]") continue;
    out += str(jsonObject(ev.data)[u"choices"][0][u"delta"][u"content"]);
  }
  return out;
}

}  // namespace

void CacheGatewayTest::missThenHitAndBypassRules() {
  auto e = start(engineYaml(kOneSim));
  const uint16_t port = e->port();
  auto first = post(port, chat("one"));
  QCOMPARE(first.status, 200);
  QCOMPARE(first.header("x-spillway-cache"), "miss");
  auto second = post(port, chat("one"));
  QCOMPARE(second.status, 200);
  QCOMPARE(second.header("x-spillway-cache"), "hit");
  QCOMPARE(second.header("x-spillway-cache-tier"), "memory");
  QCOMPARE(second.body, first.body);
  QCOMPARE(arrivals(*e), uint64_t{1});

  // Sampling that is not deterministic is not cached by default...
  QCOMPARE(post(port, chat("two", R"("temperature":0.7)")).header("x-spillway-cache"), "bypass");
  // ...unless the caller opts in; and a caller may opt out.
  QCOMPARE(post(port, chat("two", R"("temperature":0.7)"), {{"x-spillway-cache", "on"}}).header("x-spillway-cache"), "miss");
  QCOMPARE(post(port, chat("two", R"("temperature":0.7)"), {{"x-spillway-cache", "on"}}).header("x-spillway-cache"), "hit");
  QCOMPARE(post(port, chat("one"), {{"x-spillway-cache", "off"}}).header("x-spillway-cache"), "bypass");
  // no-cache: not served from the cache (goes upstream); no-store: not stored.
  const uint64_t before = arrivals(*e);
  QCOMPARE(post(port, chat("one"), {{"Cache-Control", "no-cache"}}).header("x-spillway-cache"), "miss");
  QCOMPARE(arrivals(*e), before + 1);
  QCOMPARE(post(port, chat("three"), {{"Cache-Control", "no-store"}}).header("x-spillway-cache"), "miss");
  QCOMPARE(post(port, chat("three")).header("x-spillway-cache"), "miss");
  QCOMPARE(post(port, chat("three")).header("x-spillway-cache"), "hit");
  // Errors are never stored: an unknown model is answered before the cache.
  auto bad = post(port, R"({"model":"nope","temperature":0,"messages":[{"role":"user","content":"x"}]})");
  QCOMPARE(bad.status, 404);
  QVERIFY(bad.header("x-spillway-cache").empty());
  const auto st = e->cache();
  QCOMPARE(st.hits, uint64_t{3});
  QVERIFY(st.bypasses >= 2);
  QVERIFY(e->metricsText().find("spillway_cache_requests_total{outcome=\"hit\",tier=\"memory\"} 3") != std::string::npos);
}

void CacheGatewayTest::replaysInTheFormAsked() {
  auto e = start(engineYaml(kOneSim));
  const uint16_t port = e->port();
  // Filled by a JSON answer, served as a stream.
  auto json = post(port, chat("form"));
  QCOMPARE(json.header("x-spillway-cache"), "miss");
  auto replayed = streamRequest(port, "/v1/chat/completions", chat("form", R"("temperature":0,"stream":true)"));
  QCOMPARE(replayed.status, 200);
  QCOMPARE(replayed.headers["x-spillway-cache"], "hit");
  QVERIFY(replayed.sawDone());
  QCOMPARE(streamedContent(replayed), content(json));
  // Filled by a stream (with usage), served as JSON and as a stream without usage.
  auto streamed = streamRequest(port, "/v1/chat/completions",
                                chat("stream-first", R"("temperature":0,"stream":true,"stream_options":{"include_usage":true})"));
  QCOMPARE(streamed.headers["x-spillway-cache"], "miss");
  auto as_json = post(port, chat("stream-first"));
  QCOMPARE(as_json.header("x-spillway-cache"), "hit");
  QCOMPARE(content(as_json), streamedContent(streamed));
  QVERIFY(jsonObject(as_json.body)[u"usage"][u"completion_tokens"].toInt() > 0);
  auto plain = streamRequest(port, "/v1/chat/completions", chat("stream-first", R"("temperature":0,"stream":true)"));
  QCOMPARE(plain.headers["x-spillway-cache"], "hit");
  for (const auto& ev : plain.events) QVERIFY(ev.data.find("\"usage\":{") == std::string::npos);
  // The simulator counts a stream once its last chunk is written, which may
  // be after the client read it through the gateway.
  QVERIFY(waitFor([&] { return arrivals(*e) >= 2; }));
  QCOMPARE(arrivals(*e), uint64_t{2});
}

void CacheGatewayTest::entriesAreScopedPerTenant() {
  const std::string keys = std::string("limits:\n  keys:\n") + "    - {name: alpha, sha256: " + common::sha256Hex("sk-a") +
                           "}\n    - {name: beta, sha256: " + common::sha256Hex("sk-b") + "}\n";
  {
    auto e = start(engineYaml(kOneSim, keys));
    const Headers a{{"Authorization", "Bearer sk-a"}}, b{{"Authorization", "Bearer sk-b"}};
    QCOMPARE(post(e->port(), chat("tenant"), a).header("x-spillway-cache"), "miss");
    QCOMPARE(post(e->port(), chat("tenant"), a).header("x-spillway-cache"), "hit");
    QCOMPARE(post(e->port(), chat("tenant"), b).header("x-spillway-cache"), "miss");  // never alpha's answer
    QCOMPARE(*e->purgeCache("", "alpha", "test"), uint64_t{1});
    QCOMPARE(post(e->port(), chat("tenant"), a).header("x-spillway-cache"), "miss");
    QCOMPARE(post(e->port(), chat("tenant"), b).header("x-spillway-cache"), "hit");
  }
  auto shared = start(engineYaml(kOneSim, keys + "cache: {scope: shared}\n"));
  QCOMPARE(post(shared->port(), chat("tenant"), {{"Authorization", "Bearer sk-a"}}).header("x-spillway-cache"), "miss");
  QCOMPARE(post(shared->port(), chat("tenant"), {{"Authorization", "Bearer sk-b"}}).header("x-spillway-cache"), "hit");
}

void CacheGatewayTest::diskTierSurvivesARestart() {
  QTemporaryDir dir;
  std::string body;
  {
    auto e = start(engineYaml(kOneSim), {dir.path().toStdString(), "test", false});
    auto r = post(e->port(), chat("persist"));
    QCOMPARE(r.header("x-spillway-cache"), "miss");
    body = r.body;
    // Written off the response path: wait for the row.
    QVERIFY(waitFor([&] { return e->cache().tiers[1].entries == 1; }));
  }
  auto e = start(engineYaml(kOneSim), {dir.path().toStdString(), "test", false});
  auto r = post(e->port(), chat("persist"));
  QCOMPARE(r.header("x-spillway-cache"), "hit");
  QCOMPARE(r.header("x-spillway-cache-tier"), "disk");
  QCOMPARE(r.body, body);
  QCOMPARE(arrivals(*e), uint64_t{0});
  // Promoted: the next one is a memory hit.
  QCOMPARE(post(e->port(), chat("persist")).header("x-spillway-cache-tier"), "memory");
}

void CacheGatewayTest::burstReachesTheBackendOnce() {
  // 400 tokens at 2 ms each: the answer takes ~1 s, long enough for the
  // whole burst to arrive while it is in flight.
  auto e = start(engineYaml(R"(  - name: a
    url: sim://a
    models: [m]
    sim: {prefill_base_ms: 100, inter_token_ms: 2, min_output_tokens: 400, max_output_tokens: 400}
)"));
  const uint16_t port = e->port();
  const std::string json_body = R"({"model":"m","max_tokens":400,"temperature":0,"messages":[{"role":"user","content":"burst"}]})";
  const std::string stream_body =
      R"({"model":"m","max_tokens":400,"temperature":0,"stream":true,"messages":[{"role":"user","content":"burst"}]})";
  // The leader: a stream, in flight once its first event arrived.
  auto leader = startStream(port, "/v1/chat/completions", stream_body);
  // A slow waiter: asks for the stream and never reads (a tiny receive buffer).
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket slow(io);
  slow.open(boost::asio::ip::tcp::v4());
  slow.set_option(boost::asio::socket_base::receive_buffer_size(1024));
  slow.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  const std::string raw = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(stream_body.size()) + "\r\n\r\n" + stream_body;
  boost::asio::write(slow, boost::asio::buffer(raw));
  // Then 20 stream and 20 JSON waiters at once.
  std::vector<std::future<StreamResult>> streams;
  std::vector<std::future<HttpResult>> jsons;
  for (int i = 0; i < 20; ++i) {
    streams.push_back(std::async(std::launch::async, [&] { return streamRequest(port, "/v1/chat/completions", stream_body); }));
    jsons.push_back(std::async(std::launch::async, [&] { return post(port, json_body); }));
  }
  const StreamResult lead = leader.get();
  QCOMPARE(lead.status, 200);
  QVERIFY(lead.sawDone());
  const std::string expected = streamedContent(lead);
  QVERIFY(!expected.empty());
  int coalesced = 0;
  for (auto& f : streams) {
    StreamResult r = f.get();
    QCOMPARE(r.status, 200);
    QVERIFY(r.sawDone());
    QCOMPARE(streamedContent(r), expected);
    coalesced += r.headers["x-spillway-cache"] == "coalesced" ? 1 : 0;
  }
  for (auto& f : jsons) {
    HttpResult r = f.get();
    QCOMPARE(r.status, 200);
    QCOMPARE(content(r), expected);
    coalesced += r.header("x-spillway-cache") == "coalesced" ? 1 : 0;
  }
  slow.close();
  // Everyone got the answer; the backend saw one request (late arrivals
  // are hits, not coalesced: the answer was already stored). The simulator
  // counts the stream once its last chunk is out, maybe after the clients.
  QVERIFY(waitFor([&] { return arrivals(*e) >= 1; }));
  QCOMPARE(arrivals(*e), uint64_t{1});
  QVERIFY2(coalesced >= 1, qPrintable(QString::number(coalesced)));
}

void CacheGatewayTest::brokenLeaderNeitherHangsWaitersNorIsStored() {
  auto e = start(engineYaml(R"(  - name: a
    url: sim://a
    models: [m]
    sim: {prefill_base_ms: 50, inter_token_ms: 5, min_output_tokens: 100, max_output_tokens: 100, failures: {rate: 1, kind: RESET_MID_STREAM}}
)"));
  const uint16_t port = e->port();
  const std::string stream_body =
      R"({"model":"m","max_tokens":100,"temperature":0,"stream":true,"messages":[{"role":"user","content":"breaks"}]})";
  const std::string json_body = R"({"model":"m","max_tokens":100,"temperature":0,"messages":[{"role":"user","content":"breaks"}]})";
  std::vector<std::future<StreamResult>> streams;
  std::vector<std::future<HttpResult>> jsons;
  for (int i = 0; i < 5; ++i) {
    streams.push_back(std::async(std::launch::async, [&] { return streamRequest(port, "/v1/chat/completions", stream_body); }));
    jsons.push_back(std::async(std::launch::async, [&] { return post(port, json_body); }));
  }
  // Every caller ends (the client's own timeout would say otherwise), none
  // with a complete answer.
  for (auto& f : streams) {
    StreamResult r = f.get();
    QVERIFY2(r.error.empty() || r.error.find("timeout") == std::string::npos, r.error.c_str());
    QVERIFY(!r.sawDone());
  }
  for (auto& f : jsons) {
    HttpResult r = f.get();
    QVERIFY(r.status >= 500);
  }
  QCOMPARE(e->cache().tiers[0].entries, uint64_t{0});  // a broken answer is never stored
  QCOMPARE(post(port, json_body).header("x-spillway-cache"), "miss");
}

void CacheGatewayTest::staleAnswersWhenDegradedOrWithoutBackends() {
  auto now = std::make_shared<std::atomic<int64_t>>(1'000'000);
  EngineOptions options{"", "test", false};
  options.cache_clock_ms = [now] { return now->load(); };
  auto e = start(engineYaml(kOneSim, "cache: {memory: {ttl_seconds: 10}, stale_grace_seconds: 60}\n"), options);
  const uint16_t port = e->port();
  auto fresh = post(port, chat("stale"));
  QCOMPARE(fresh.header("x-spillway-cache"), "miss");
  now->fetch_add(20'000);  // expired, within the grace
  // Not degraded: an expired entry is not served; the request goes upstream.
  QCOMPARE(post(port, chat("stale"), {{"x-spillway-cache", "on"}, {"Cache-Control", "no-store"}}).header("x-spillway-cache"),
           "miss");
  // Degradation level 1 (sheddable at a pinned 1): the stale answer.
  QVERIFY(e->pinDegradation("m", 1, "test").ok());
  auto degraded = post(port, chat("stale"), {{"x-spillway-priority", "sheddable"}});
  QCOMPARE(degraded.status, 200);
  QCOMPARE(degraded.header("x-spillway-cache"), "stale");
  QCOMPARE(degraded.header("x-spillway-degraded"), "1");
  QCOMPARE(degraded.body, fresh.body);
  QVERIFY(e->pinDegradation("m", -1, "test").ok());
  // No backend can serve: the stale answer rather than a 503.
  QVERIFY(e->setBackendDrained("a", true, "test").ok());
  auto drained = post(port, chat("stale"));
  QCOMPARE(drained.status, 200);
  QCOMPARE(drained.header("x-spillway-cache"), "stale");
  // Past the grace: nothing to give.
  now->fetch_add(60'000);
  QCOMPARE(post(port, chat("stale")).status, 503);
  QVERIFY(e->cache().stale >= 2);
}

void CacheGatewayTest::operatorLooksUpAndPurges() {
  auto e = start(engineYaml(kOneSim, "cache: {scope: shared}\n"));
  QCOMPARE(post(e->port(), chat("lookup")).status, 200);
  auto found = e->cacheLookup(chat("lookup"), "");
  QVERIFY(found.ok());
  QVERIFY(found->cacheable);
  QVERIFY(found->found);
  QCOMPARE(found->tier, "memory");
  QCOMPARE(found->form, "json");
  QCOMPARE(found->key.size(), size_t{32});
  auto other = e->cacheLookup(chat("never asked"), "");
  QVERIFY(other.ok() && !other->found);
  QVERIFY(!e->cacheLookup("{not json", "").ok());
  QVERIFY(!e->cacheLookup(R"({"model":"unknown","messages":[]})", "").ok());
  QCOMPARE(*e->purgeCache("m", "", "ops"), uint64_t{1});
  QVERIFY(!e->cacheLookup(chat("lookup"), "")->found);
  QCOMPARE(post(e->port(), chat("lookup")).header("x-spillway-cache"), "miss");
  QCOMPARE(*e->purgeCache("", "", "ops"), uint64_t{1});
  auto audit = e->audit();
  int purges = 0;
  for (const auto& ev : audit) purges += (ev.action == "cache.purge" || ev.action == "cache.flush") && ev.actor == "ops";
  QCOMPARE(purges, 2);
}

void CacheGatewayTest::redisTierIsSharedAndSkippedWhenDown() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  const std::string extra = "cache: {scope: shared, redis: {address: \"127.0.0.1:" + std::to_string(redis.port()) +
                            "\", timeout_ms: 200}}\n";
  auto a = start(engineYaml(kOneSim, extra));
  auto b = start(engineYaml(kOneSim, extra));  // another replica
  QCOMPARE(post(a->port(), chat("shared")).header("x-spillway-cache"), "miss");
  // Written off the response path: b finds it once a's write landed.
  QVERIFY(waitFor([&] {
    auto found = b->cacheLookup(chat("shared"), "");
    return found.ok() && found->found;
  }));
  auto hit = post(b->port(), chat("shared"));
  QCOMPARE(hit.header("x-spillway-cache"), "hit");
  QCOMPARE(arrivals(*b), uint64_t{0});

  redis.kill();
  // Skipped, never waited on for long and never an error.
  auto r = post(b->port(), chat("while down"));
  QCOMPARE(r.status, 200);
  QCOMPARE(r.header("x-spillway-cache"), "miss");
  QCOMPARE(post(b->port(), chat("while down")).header("x-spillway-cache"), "hit");  // memory still works
  QVERIFY(waitFor([&] { return b->cache().tiers[2].detail.find("(down)") != std::string::npos; }));
}

QTEST_APPLESS_MAIN(CacheGatewayTest)
