#include "coalesce_stage_test.h"

#include <QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "cache/cache_state.h"
#include "cache/coalesce_stage.h"
#include "metrics/registry.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"
#include "support/recording_channel.h"

using namespace spillway;
using spillway::testing::Recorded;
using spillway::testing::RecordingChannel;

namespace {

v1::Cache cacheConfig() {
  v1::Cache c;
  c.set_max_entry_bytes(1 << 20);  // what validation's defaults give
  return c;
}

// A routing table with one pool and the cache; what the stage reads.
struct Fixture {
  metrics::Registry registry;
  std::shared_ptr<cache::ResponseCache> cache = std::make_shared<cache::ResponseCache>(cacheConfig(), "", registry);
  pipeline::RouteTable routes;
  cache::CoalesceStage stage{cache};
  boost::asio::io_context io;
  Fixture() {
    routes.config.mutable_upstream()->set_idle_timeout_ms(60000);
    routes.config.mutable_upstream()->set_first_byte_timeout_ms(60000);
    routes.pools["m"].model = "m";
    routes.cache = cache;
  }
  // A cacheable request for `key` in the given form.
  void request(pipeline::RequestContext& ctx, RecordingChannel& channel, uint64_t key, bool stream) {
    ctx.routes = &routes;
    ctx.pool = &routes.pools["m"];
    ctx.channel = &channel;
    ctx.parsed.endpoint = openai::Endpoint::kChatCompletions;
    ctx.parsed.stream = stream;
    ctx.cache = std::make_shared<cache::CacheState>();
    ctx.cache->active = true;
    ctx.cache->key = cache::CacheKey{key, key};
  }
  // Starts the stage for ctx; `out` is set when it returns.
  void start(pipeline::RequestContext& ctx, std::optional<pipeline::Verdict>& out) {
    boost::asio::co_spawn(io, [&]() -> common::Awaitable<void> { out = co_await stage.run(ctx); },
                          boost::asio::detached);
  }
  void runReady() {
    io.restart();
    io.poll();
  }
  // A leader for `key` (a stream) and a waiter in the form given, the
  // waiter suspended on the leader's flight; returns that flight.
  struct Pair {
    RecordingChannel lead_channel, wait_channel;
    pipeline::RequestContext leader, waiter;
    std::optional<pipeline::Verdict> lv, wv;
  };
  cache::Flight& leadAndFollow(Pair& p, uint64_t key, bool waiter_streams) {
    request(p.leader, p.lead_channel, key, true);
    request(p.waiter, p.wait_channel, key, waiter_streams);
    start(p.leader, p.lv);
    runReady();
    start(p.waiter, p.wv);
    runReady();
    return *p.leader.cache->flight;
  }
};

const std::string kStream =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n";

}  // namespace

void CoalesceStageTest::leaderGoesOnMarkedMiss() {
  Fixture f;
  RecordingChannel channel;
  pipeline::RequestContext ctx;
  f.request(ctx, channel, 1, true);
  QVERIFY(f.stage.waits(ctx));
  std::optional<pipeline::Verdict> v;
  f.start(ctx, v);
  f.runReady();
  QCOMPARE(v, std::optional(pipeline::Verdict::kContinue));
  QVERIFY(ctx.cache->flight != nullptr);
  QVERIFY(ctx.cache->lease != nullptr);
  QVERIFY(ctx.response_headers.find("x-spillway-cache: miss") != std::string::npos);
  QCOMPARE(f.cache->coalescer().inFlight(), size_t{1});
  QVERIFY(channel.recorded.status == 0);  // nothing written: the attempt loop answers
}

void CoalesceStageTest::waiterInTheSameFormIsRelayedLive() {
  Fixture f;
  Fixture::Pair p;
  cache::Flight& flight = f.leadAndFollow(p, 2, true);
  auto& [lead_channel, wait_channel, leader, waiter, lv, wv] = p;
  QVERIFY(!wv);  // waiting for the leader's answer
  flight.begin("text/event-stream");
  const size_t half = kStream.size() / 2;
  flight.append(kStream.substr(0, half));
  f.runReady();
  QVERIFY(!wv);
  QCOMPARE(wait_channel.recorded.status, 200);
  QVERIFY(wait_channel.recorded.event_stream);
  QCOMPARE(wait_channel.recorded.body, kStream.substr(0, half));  // relayed before the leader finished
  flight.append(kStream.substr(half));
  flight.finish();
  f.runReady();
  QCOMPARE(wv, std::optional(pipeline::Verdict::kAnswered));
  QVERIFY(waiter.answered_in_place);
  QVERIFY(waiter.keep_connection);
  QCOMPARE(waiter.status, 200);
  QCOMPARE(wait_channel.recorded.body, kStream);
  QVERIFY(wait_channel.recorded.ended);
  QVERIFY(wait_channel.recorded.headers.find("x-spillway-cache: coalesced") != std::string::npos);
  QVERIFY(waiter.cache->lease == nullptr);  // waiters lead nothing
}

void CoalesceStageTest::waiterInAnotherFormGetsTheWholeAnswerReplayed() {
  Fixture f;
  Fixture::Pair p;
  cache::Flight& flight = f.leadAndFollow(p, 3, /*stream=*/false);
  auto& [lead_channel, wait_channel, leader, waiter, lv, wv] = p;
  flight.begin("text/event-stream");
  flight.append(kStream);
  flight.finish();
  f.runReady();
  QCOMPARE(wv, std::optional(pipeline::Verdict::kAnswered));
  // Not written in place: a whole JSON answer for the gateway to send.
  QVERIFY(!waiter.answered_in_place);
  QVERIFY(waiter.answer_body.has_value());
  QVERIFY2(waiter.answer_body->find("\"content\":\"Hi there\"") != std::string::npos, waiter.answer_body->c_str());
  QVERIFY(waiter.response_headers.find("x-spillway-cache: coalesced") != std::string::npos);
  QCOMPARE(wait_channel.recorded.status, 0);
}

void CoalesceStageTest::waiterOfABrokenStreamGetsTheErrorEventAndCloses() {
  Fixture f;
  Fixture::Pair p;
  cache::Flight& flight = f.leadAndFollow(p, 4, true);
  auto& [lead_channel, wait_channel, leader, waiter, lv, wv] = p;
  flight.begin("text/event-stream");
  flight.append(kStream.substr(0, 40));
  f.runReady();
  flight.fail();
  f.runReady();
  QCOMPARE(wv, std::optional(pipeline::Verdict::kAnswered));
  QVERIFY(waiter.answered_in_place);
  QVERIFY(!waiter.keep_connection);
  QCOMPARE(waiter.status, 502);
  QVERIFY(!wait_channel.recorded.ended);  // never a fake clean end
  QVERIFY(wait_channel.recorded.aborted_with.find("upstream_disconnected") != std::string::npos);
}

void CoalesceStageTest::leaseLeavesTheFlightWithTheRequest() {
  Fixture f;
  RecordingChannel channel;
  std::optional<pipeline::Verdict> v;
  {
    pipeline::RequestContext leader;
    f.request(leader, channel, 5, true);
    f.start(leader, v);
    f.runReady();
    QCOMPARE(f.cache->coalescer().inFlight(), size_t{1});
  }
  // The leader ended without an answer: the flight is gone (failed for any
  // waiter), and the next identical request leads a new one.
  QCOMPARE(f.cache->coalescer().inFlight(), size_t{0});
  pipeline::RequestContext next;
  RecordingChannel next_channel;
  f.request(next, next_channel, 5, true);
  std::optional<pipeline::Verdict> nv;
  f.start(next, nv);
  f.runReady();
  QCOMPARE(nv, std::optional(pipeline::Verdict::kContinue));
  QVERIFY(next.cache->lease != nullptr);
}

void CoalesceStageTest::uncacheableRequestsDoNotWait() {
  Fixture f;
  pipeline::RequestContext ctx;
  QVERIFY(!f.stage.waits(ctx));  // not cacheable: no cache record
  ctx.cache = std::make_shared<cache::CacheState>();
  ctx.cache->active = false;  // bypassed by the cache stage, or degraded to another question
  QVERIFY(!f.stage.waits(ctx));
  QCOMPARE(f.stage.process(ctx), pipeline::Verdict::kContinue);
  QCOMPARE(f.cache->coalescer().inFlight(), size_t{0});
}

QTEST_APPLESS_MAIN(CoalesceStageTest)
