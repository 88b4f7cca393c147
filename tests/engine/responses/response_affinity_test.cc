#include "response_affinity_test.h"

#include <QtTest>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "common/url.h"
#include "metrics/registry.h"
#include "pipeline/request_context.h"
#include "responses/response_affinity.h"
#include "responses/response_owners.h"
#include "support/recording_channel.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

upstream::BackendPtr backend(const std::string& name) {
  v1::Backend cfg;
  cfg.set_name(name);
  return std::make_shared<upstream::Backend>(1, cfg, *common::parseUrl("http://127.0.0.1:1"), "");
}

// Runs `body` (which co_awaits the sink) to completion.
template <typename F>
void run(F body) {
  boost::asio::io_context io;
  boost::asio::co_spawn(io, body, boost::asio::detached);
  io.run();
}

const std::string kStream =
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":"
    "{\"id\":\"resp_42\",\"status\":\"in_progress\",\"usage\":null}}\n\n"
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n"
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\" there\"}\n\n"
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_42\","
    "\"output\":[{\"id\":\"msg_1\",\"content\":[{\"text\":\"Hi there you\"}]}],"
    "\"usage\":{\"input_tokens\":12,\"output_tokens\":3,\"output_tokens_details\":{},\"total_tokens\":15}}}\n\n";

}  // namespace

void ResponseAffinityTest::streamIsReadAcrossSplitReads() {
  // Every way of cutting the stream into reads gives the same reading.
  for (size_t piece : {size_t{1}, size_t{7}, size_t{64}, kStream.size()}) {
    metrics::Registry registry;
    responses::ResponseOwners owners(registry);
    pipeline::RequestContext ctx;
    ctx.parsed.endpoint = openai::Endpoint::kResponses;
    ctx.parsed.stream = true;
    ctx.backend = backend("b1");
    Recorded out;
    RecordingSink client(out, "");
    responses::ResponseSink sink(client, owners, ctx);
    run([&]() -> common::Awaitable<void> {
      upstream::ResponseHead head;
      head.event_stream = true;
      co_await sink.sendHead(head);
      for (size_t at = 0; at < kStream.size(); at += piece) {
        co_await sink.sendBody(std::string_view(kStream).substr(at, piece));
      }
      co_await sink.sendEnd();
    });
    QCOMPARE(out.body, kStream);  // relayed unchanged
    QCOMPARE(owners.owner("resp_42").value_or("?"), "b1");
    QVERIFY(ctx.first_token.has_value());
    QCOMPARE(ctx.reported_output_tokens.value_or(0), 3u);  // not the 4 events, not output_tokens_details
    QCOMPARE(owners.size(), size_t{1});
  }
}

void ResponseAffinityTest::jsonAnswerNamesItsOwnerAndDeleteForgets() {
  metrics::Registry registry;
  responses::ResponseOwners owners(registry);
  pipeline::RequestContext ctx;
  ctx.parsed.endpoint = openai::Endpoint::kResponses;
  ctx.backend = backend("b2");
  Recorded out;
  RecordingSink client(out, "");
  {
    responses::ResponseSink sink(client, owners, ctx);
    run([&]() -> common::Awaitable<void> {
      upstream::ResponseHead head;
      co_await sink.sendWhole(head, R"({"id": "resp_7","object":"response","output":[{"id":"msg_9"}]})");
    });
  }
  QCOMPARE(owners.owner("resp_7").value_or("?"), "b2");
  QVERIFY(!owners.owner("msg_9"));
  // An error answer teaches nothing.
  {
    responses::ResponseSink sink(client, owners, ctx);
    run([&]() -> common::Awaitable<void> {
      upstream::ResponseHead head;
      head.status = 400;
      co_await sink.sendWhole(head, R"({"id":"resp_bad"})");
    });
  }
  QVERIFY(!owners.owner("resp_bad"));
  // DELETE /v1/responses/resp_7 answered 200: forgotten.
  pipeline::RequestContext del;
  del.parsed.endpoint = openai::Endpoint::kResponseById;
  del.method = "DELETE";
  del.response_id = "resp_7";
  {
    responses::ResponseSink sink(client, owners, del);
    run([&]() -> common::Awaitable<void> {
      upstream::ResponseHead head;
      co_await sink.sendWhole(head, R"({"id":"resp_7","deleted":true})");
    });
  }
  QVERIFY(!owners.owner("resp_7"));
  QCOMPARE(responses::firstId(R"({"object":"x", "id" : "a1"})"), "a1");
  QCOMPARE(responses::firstId(R"({"id":7,"x":{"id":"b"}})"), "b");
  QCOMPARE(responses::firstId(R"({"id":"unterminated)"), "");
}

void ResponseAffinityTest::ownersExpireAndAreBounded() {
  metrics::Registry registry;
  int64_t now = 1000;
  responses::ResponseOwners owners(registry, [&] { return now; });
  owners.configure(std::chrono::seconds(10), 2);
  owners.remember("r1", "a");
  owners.remember("r2", "b");
  owners.remember("r3", "c");  // past the bound: r1 goes
  QVERIFY(!owners.owner("r1"));
  QCOMPARE(owners.owner("r2").value_or("?"), "b");
  QCOMPARE(owners.size(), size_t{2});
  now += 10'000;  // the TTL
  QVERIFY(!owners.owner("r2"));
  owners.remember("r4", "d");  // sweeps the expired
  QCOMPARE(owners.size(), size_t{1});
  QCOMPARE(owners.owner("r4").value_or("?"), "d");
  // Remembered again: the newer owner wins.
  owners.remember("r4", "e");
  QCOMPARE(owners.owner("r4").value_or("?"), "e");
}

QTEST_APPLESS_MAIN(ResponseAffinityTest)
