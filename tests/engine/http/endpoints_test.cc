#include "endpoints_test.h"

#include <QtTest>

#include <future>
#include <set>

#include "common/sha256.h"
#include "engine.h"
#include "sim/sim_answers.h"
#include "sim/sim_server.h"
#include "support/json.h"
#include "support/redis_server.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

HttpResult post(uint16_t port, const std::string& target, const std::string& body, Headers headers = {}) {
  headers.push_back({"Content-Type", "application/json"});
  return httpRequest(port, "POST", target, body, headers);
}

uint64_t embedded(Engine& e, const std::string& backend = "a") { return e.simulator(backend)->counters().embedding_inputs; }

std::string batch(const std::vector<std::string>& inputs, const std::string& extra = "") {
  std::string s = R"({"model":"m","input":[)";
  for (size_t i = 0; i < inputs.size(); ++i) s += (i ? ",\"" : "\"") + inputs[i] + "\"";
  return s + "]" + extra + "}";
}

// The answer's vectors in order, after checking every index appears once, in order.
std::vector<std::vector<double>> vectors(const HttpResult& r) {
  std::vector<std::vector<double>> out;
  const QJsonArray data = jsonObject(r.body)[u"data"].toArray();
  for (qsizetype i = 0; i < data.size(); ++i) {
    if (data[i][u"index"].toInt(-1) != i) return {};
    std::vector<double> v;
    for (const auto x : data[i][u"embedding"].toArray()) v.push_back(x.toDouble());
    out.push_back(std::move(v));
  }
  return out;
}

// What the simulator gives `text` (dimensions 16).
std::vector<double> expected(const std::string& text) {
  std::vector<double> v;
  for (float x : sim::embeddingOf(text, 16)) v.push_back(x);
  return v;
}

bool near(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > 1e-6) return false;
  }
  return true;
}

const char* kEmbedSim = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant, embedding_dimensions: 16}
)";

}  // namespace

void EndpointsTest::embeddingsBatchSendsOnlyMissingInputs() {
  auto e = startFromYaml(engineYaml(kEmbedSim));
  const uint16_t port = e->port();
  std::vector<std::string> first;
  for (int i = 0; i < 8; ++i) first.push_back("text number " + std::to_string(i));
  auto r1 = post(port, "/v1/embeddings", batch(first));
  QCOMPARE(r1.status, 200);
  QCOMPARE(r1.header("x-spillway-cache-items"), "0/8");
  QCOMPARE(embedded(*e), uint64_t{8});
  QCOMPARE(jsonObject(r1.body)[u"usage"][u"prompt_tokens"].toInt(), 32);  // 4 tokens per input, all embedded now

  // Six known inputs in another order, two new ones between them, one twice.
  const std::vector<std::string> second = {"text number 5", "new one",       "text number 0", "text number 7",
                                           "another new",   "text number 2", "new one",       "text number 3",
                                           "text number 1"};
  auto r2 = post(port, "/v1/embeddings", batch(second));
  QCOMPARE(r2.status, 200);
  QCOMPARE(r2.header("x-spillway-cache-items"), "6/9");
  QCOMPARE(embedded(*e), uint64_t{10});  // the two new inputs, the repeated one once
  const auto got = vectors(r2);
  QCOMPARE(got.size(), second.size());
  for (size_t i = 0; i < second.size(); ++i) QVERIFY2(near(got[i], expected(second[i])), second[i].c_str());
  QVERIFY(!near(got[0], got[2]));  // the vectors can be told apart
  // Usage counts what was embedded for this request: the two new inputs.
  QCOMPARE(jsonObject(r2.body)[u"usage"][u"prompt_tokens"].toInt(), 5);

  // All known: answered without the backend, as a hit.
  auto r3 = post(port, "/v1/embeddings", R"({"model":"m","input":"new one"})");
  QCOMPARE(r3.status, 200);
  QCOMPARE(r3.header("x-spillway-cache"), "hit");
  QCOMPARE(r3.header("x-spillway-cache-items"), "1/1");
  QCOMPARE(embedded(*e), uint64_t{10});
  QVERIFY(near(vectors(r3).at(0), expected("new one")));
  const std::string metrics = httpRequest(port, "GET", "/metrics").body;
  QVERIFY(metrics.find(R"(spillway_cache_embedding_items_total{outcome="hit"} 7)") != std::string::npos);
  QVERIFY(metrics.find(R"(spillway_cache_embedding_items_total{outcome="miss"} 11)") != std::string::npos);
}

void EndpointsTest::embeddingsKeysFollowFormatAndTenant() {
  auto e = startFromYaml(engineYaml(kEmbedSim, "limits:\n  keys:\n    - {name: t1, sha256: " + common::sha256Hex("sk-1") +
                                           "}\n    - {name: t2, sha256: " + common::sha256Hex("sk-2") + "}\n"));
  const uint16_t port = e->port();
  QCOMPARE(post(port, "/v1/embeddings", batch({"x"}), {{"Authorization", "Bearer sk-1"}}).status, 200);
  // Same input, same tenant, other encoding: another entry.
  auto b64 = post(port, "/v1/embeddings", batch({"x"}, R"(,"encoding_format":"base64")"), {{"Authorization", "Bearer sk-1"}});
  QCOMPARE(b64.status, 200);
  QCOMPARE(b64.header("x-spillway-cache-items"), "0/1");
  QVERIFY(jsonObject(b64.body)[u"data"][0][u"embedding"].isString());
  // Same input, whitespace and key order aside: the same entry.
  auto same = post(port, "/v1/embeddings", R"({ "input" : [ "x" ] , "model":"m"})", {{"Authorization", "Bearer sk-1"}});
  QCOMPARE(same.header("x-spillway-cache-items"), "1/1");
  // Another tenant: its own entries (cache.per_tenant defaults to true).
  auto other = post(port, "/v1/embeddings", batch({"x"}), {{"Authorization", "Bearer sk-2"}});
  QCOMPARE(other.header("x-spillway-cache-items"), "0/1");
  QCOMPARE(embedded(*e), uint64_t{3});
  // Opting out reaches the backend and says so.
  auto off = post(port, "/v1/embeddings", batch({"x"}), {{"Authorization", "Bearer sk-1"}, {"x-spillway-cache", "off"}});
  QCOMPARE(off.header("x-spillway-cache"), "bypass");
  QCOMPARE(embedded(*e), uint64_t{4});
}

void EndpointsTest::embeddingsAreLimitedByInputTokens() {
  // 60 tokens a minute, charged by the gateway's estimate of the input
  // (body bytes / 4, no output budget): the first batch (about 15) fits,
  // and the bucket runs out within the next eight small ones (about 9 each).
  auto e = startFromYaml(engineYaml(kEmbedSim, "limits:\n  keys:\n    - {name: t, sha256: " + common::sha256Hex("sk-t") +
                                           ", limits: {tokens_per_minute: 60}}\n"));
  const uint16_t port = e->port();
  const Headers key = {{"Authorization", "Bearer sk-t"}};
  const std::string body = batch({"alpha beta gamma", "delta epsilon", "zeta"});  // about 45 bytes: 11 tokens
  auto ok = post(port, "/v1/embeddings", body, key);
  QCOMPARE(ok.status, 200);
  QVERIFY(!ok.header("x-ratelimit-remaining-tokens").empty());
  int limited = 0;
  for (int i = 0; i < 8 && limited == 0; ++i) {
    auto r = post(port, "/v1/embeddings", batch({"more text " + std::to_string(i)}), key);
    if (r.status == 429) {
      ++limited;
      QCOMPARE(str(jsonObject(r.body)[u"error"][u"code"]), "rate_limit_exceeded");
      QVERIFY(!r.header("retry-after").empty());
    }
  }
  QCOMPARE(limited, 1);
}

void EndpointsTest::embeddingsWaitInTheQueueNotAt503() {
  // One sequence slot and no waiting room at the server: anything past one
  // request at a time would be its 503. The gateway queues them instead.
  auto e = startFromYaml(engineYaml(R"(  - name: a
    url: sim://a
    models: [m]
    max_concurrency: 1
    sim: {profile: instant, prefill_base_ms: 30, max_num_seqs: 1, max_waiting: 1}
)"));
  const uint16_t port = e->port();
  std::vector<std::future<HttpResult>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(std::async(std::launch::async, [port, i] {
      return post(port, "/v1/embeddings", batch({"queued input " + std::to_string(i)}));
    }));
  }
  for (auto& c : calls) QCOMPARE(c.get().status, 200);
  const auto sim = e->simulator("a")->counters();
  QCOMPARE(sim.rejected_busy, uint64_t{0});
  QCOMPARE(sim.embedding_inputs, uint64_t{6});
}

void EndpointsTest::embeddingsAreNeverGivenAChatAnswer() {
  // A pool degraded to level 1 with a default answer: chat gets the canned
  // answer, embeddings their vectors.
  auto e = startFromYaml(engineYaml(kEmbedSim, R"(degradation:
  default_answers: [{model: m, text: "Busy, try later."}]
)"));
  QVERIFY(e->pinDegradation("m", 1, "test").ok());
  const Headers sheddable = {{"x-spillway-priority", "sheddable"}};  // level 1 reaches this class first
  auto chat = post(e->port(), "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})",
                   sheddable);
  QCOMPARE(chat.header("x-spillway-degraded"), "1");
  auto vectors = post(e->port(), "/v1/embeddings", batch({"still a vector"}), sheddable);
  QCOMPARE(vectors.status, 200);
  QVERIFY(vectors.header("x-spillway-degraded").empty());
  QCOMPARE(str(jsonObject(vectors.body)[u"object"]), "list");
  QCOMPARE(embedded(*e), uint64_t{1});
}

void EndpointsTest::embeddingsBadInputIsA400() {
  auto e = startFromYaml(engineYaml(kEmbedSim));
  const uint16_t port = e->port();
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c : {Case{R"({"model":"m"})", "input"}, Case{R"({"model":"m","input":[]})", "input"},
                        Case{R"({"model":"m","input":["ok",3.5]})", "input[1]"},
                        Case{R"({"model":"m","input":"x","encoding_format":"hex"})", "encoding_format"},
                        Case{R"({"model":"m","input":"x","dimensions":0})", "dimensions"}}) {
    auto r = post(port, "/v1/embeddings", c.body);
    QCOMPARE(r.status, 400);
    QCOMPARE(str(jsonObject(r.body)[u"error"][u"param"]), std::string(c.param));
  }
  QCOMPARE(embedded(*e), uint64_t{0});
}

void EndpointsTest::responsesContinueOnTheBackendThatStoredThem() {
  auto e = startFromYaml(engineYaml(kTwoInstantSims));
  const uint16_t port = e->port();
  auto created = post(port, "/v1/responses", R"({"model":"m","input":"Hello there","max_output_tokens":4})");
  QCOMPARE(created.status, 200);
  const std::string id = str(jsonObject(created.body)[u"id"]);
  const std::string owner = created.header("x-spillway-backend");
  QVERIFY(!id.empty() && !owner.empty());
  // Balancing alone would spread these over both backends.
  for (int i = 0; i < 8; ++i) {
    auto next = post(port, "/v1/responses",
                     R"({"model":"m","input":"And then?","max_output_tokens":2,"previous_response_id":")" + id + "\"}");
    QCOMPARE(next.status, 200);
    QCOMPARE(next.header("x-spillway-backend"), owner);
    QCOMPARE(str(jsonObject(next.body)[u"previous_response_id"]), id);
  }
  // Streams are learned as well: the id of response.created.
  auto stream = streamRequest(port, "/v1/responses", R"({"model":"m","input":"Stream it","stream":true})");
  QCOMPARE(stream.status, 200);
  QVERIFY(stream.complete);
  QVERIFY(stream.events.size() > 5);
  QCOMPARE(stream.events.front().type, "response.created");
  QCOMPARE(str(jsonObject(stream.events.front().data)[u"type"]), "response.created");
  QCOMPARE(stream.events.back().type, "response.completed");
  QCOMPARE(str(jsonObject(stream.events.back().data)[u"type"]), "response.completed");
  const std::string streamed_id = str(jsonObject(stream.events.front().data)[u"response"][u"id"]);
  const std::string streamed_owner = stream.headers["x-spillway-backend"];
  for (int i = 0; i < 4; ++i) {
    auto got = httpRequest(port, "GET", "/v1/responses/" + streamed_id);
    QCOMPARE(got.status, 200);
    QCOMPARE(got.header("x-spillway-backend"), streamed_owner);
    QCOMPARE(str(jsonObject(got.body)[u"status"]), "completed");
  }
  // Deleted on its backend, then unknown here.
  auto deleted = httpRequest(port, "DELETE", "/v1/responses/" + id);
  QCOMPARE(deleted.status, 200);
  QVERIFY(jsonObject(deleted.body)[u"deleted"].toBool());
  auto gone = httpRequest(port, "GET", "/v1/responses/" + id);
  QCOMPARE(gone.status, 404);
  QCOMPARE(str(jsonObject(gone.body)[u"error"][u"code"]), "response_not_found");
  QCOMPARE(httpRequest(port, "PUT", "/v1/responses/" + id).status, 405);
}

void EndpointsTest::responsesLostOwnerIsBalancedAndSaysSo() {
  auto e = startFromYaml(engineYaml(kTwoInstantSims));
  const uint16_t port = e->port();
  auto created = post(port, "/v1/responses", R"({"model":"m","input":"Remember me"})");
  QCOMPARE(created.status, 200);
  const std::string id = str(jsonObject(created.body)[u"id"]);
  const std::string owner = created.header("x-spillway-backend");
  const std::string other = owner == "a" ? "b" : "a";
  QVERIFY(e->setBackendDrained(owner, true, "test").ok());
  auto next = post(port, "/v1/responses", R"({"model":"m","input":"Still there?","previous_response_id":")" + id + "\"}");
  // The other server does not know the id and says so itself.
  QCOMPARE(next.header("x-spillway-affinity"), "lost");
  QCOMPARE(next.header("x-spillway-backend"), other);
  QCOMPARE(next.status, 400);
  QCOMPARE(str(jsonObject(next.body)[u"error"][u"code"]), "previous_response_not_found");
  // Reading it needs its owner: 503 with Retry-After while it is drained.
  auto read = httpRequest(port, "GET", "/v1/responses/" + id);
  QCOMPARE(read.status, 503);
  QVERIFY(!read.header("retry-after").empty());
  // An id the gateway never saw: balanced, counted as unknown.
  auto unknown = post(port, "/v1/responses", R"({"model":"m","input":"x","previous_response_id":"resp_elsewhere"})");
  QCOMPARE(unknown.status, 400);
  QVERIFY(unknown.header("x-spillway-affinity").empty());
}

void EndpointsTest::responsesOwnersAreSharedThroughRedis() {
  RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  // Two inference servers (an engine's simulators, on loopback) behind two
  // gateway replicas that share one Redis.
  auto fleet = startFromYaml(engineYaml(kTwoInstantSims));
  const std::string backends = "  - {name: a, url: \"http://127.0.0.1:" + std::to_string(fleet->simulator("a")->port()) +
                               "\", models: [m]}\n  - {name: b, url: \"http://127.0.0.1:" +
                               std::to_string(fleet->simulator("b")->port()) + "\", models: [m]}\n";
  const std::string shared = "api: {redis_address: \"127.0.0.1:" + std::to_string(redis.port()) + "\"}\n";
  auto one = startFromYaml(engineYaml(backends, shared));
  auto two = startFromYaml(engineYaml(backends, shared));
  auto created = post(one->port(), "/v1/responses", R"({"model":"m","input":"Made on replica one"})");
  QCOMPARE(created.status, 200);
  const std::string id = str(jsonObject(created.body)[u"id"]);
  const std::string owner = created.header("x-spillway-backend");
  // Replica two never saw it created, and finds its owner all the same.
  for (int i = 0; i < 4; ++i) {
    auto next = post(two->port(), "/v1/responses",
                     R"({"model":"m","input":"Continued on two","previous_response_id":")" + id + "\"}");
    QCOMPARE(next.status, 200);
    QCOMPARE(next.header("x-spillway-backend"), owner);
  }
  auto read = httpRequest(two->port(), "GET", "/v1/responses/" + id);
  QCOMPARE(read.status, 200);
  QCOMPARE(read.header("x-spillway-backend"), owner);
  // Deleted through two: forgotten by both.
  QCOMPARE(httpRequest(two->port(), "DELETE", "/v1/responses/" + id).status, 200);
  QCOMPARE(httpRequest(one->port(), "GET", "/v1/responses/" + id).status, 404);
  // Redis gone: each replica keeps answering from what it saw itself.
  redis.kill();
  auto local = post(one->port(), "/v1/responses", R"({"model":"m","input":"Without Redis"})");
  QCOMPARE(local.status, 200);
  auto again = httpRequest(one->port(), "GET", "/v1/responses/" + str(jsonObject(local.body)[u"id"]));
  QCOMPARE(again.status, 200);
  QCOMPARE(again.header("x-spillway-backend"), local.header("x-spillway-backend"));
}

void EndpointsTest::responsesStreamFailureEndsWithTheErrorEvent() {
  auto e = startFromYaml(engineYaml(R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant, min_output_tokens: 20, max_output_tokens: 20, failures: {rate: 1, kind: RESET_MID_STREAM}}
)"));
  auto r = streamRequest(e->port(), "/v1/responses", R"({"model":"m","input":"Break please","stream":true})");
  QCOMPARE(r.status, 200);
  QVERIFY(!r.events.empty());
  const QJsonObject last = jsonObject(r.events.back().data);
  QCOMPARE(r.events.back().type, "error");  // the typed event the SDKs raise on
  QCOMPARE(str(last[u"type"]), "error");
  QCOMPARE(str(last[u"code"]), "upstream_disconnected");
  for (const auto& ev : r.events) QVERIFY(ev.data.find("response.completed") == std::string::npos);
}

void EndpointsTest::passthroughRoutesReachTheNamedPool() {
  auto e = startFromYaml(engineYaml(R"(  - name: a
    url: sim://a
    models: [ranker]
    sim: {profile: instant}
  - name: b
    url: sim://b
    models: [whisper]
    sim: {profile: instant}
)"));
  const uint16_t port = e->port();
  auto ranked = post(port, "/v1/rerank", R"({"model":"ranker","query":"red apple","documents":["pear","red apple pie"]})");
  QCOMPARE(ranked.status, 200);
  QCOMPARE(ranked.header("x-spillway-backend"), "a");
  QCOMPARE(jsonObject(ranked.body)[u"results"][0][u"index"].toInt(), 1);
  // A multipart form names its model in a field; the body passes unchanged.
  const std::string form =
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
      "RIFF0123456789\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XyZ--\r\n";
  auto heard = httpRequest(port, "POST", "/v1/audio/transcriptions", form,
                           {{"Content-Type", "multipart/form-data; boundary=XyZ"}});
  QCOMPARE(heard.status, 200);
  QCOMPARE(heard.header("x-spillway-backend"), "b");
  QCOMPARE(str(jsonObject(heard.body)[u"text"]), "Simulated transcription of 14 bytes.");
  auto detok = post(port, "/detokenize", R"({"model":"ranker","tokens":[7,8,9]})");
  QCOMPARE(detok.status, 200);
  QCOMPARE(str(jsonObject(detok.body)[u"prompt"]), "tok tok tok");
  // No model and two pools: asked for one. Unknown paths list the routes.
  auto nameless = post(port, "/tokenize", R"({"prompt":"hi"})");
  QCOMPARE(nameless.status, 400);
  QCOMPARE(str(jsonObject(nameless.body)[u"error"][u"param"]), "model");
  auto unknown = post(port, "/v1/not-a-route", "{}");
  QCOMPARE(unknown.status, 404);
  QVERIFY(str(jsonObject(unknown.body)[u"error"][u"message"]).find("POST /v1/rerank") != std::string::npos);
  const std::string metrics = httpRequest(port, "GET", "/metrics").body;
  QVERIFY(metrics.find(R"(spillway_requests_total{route="passthrough",model="ranker",backend="a",code="200"} 2)") !=
          std::string::npos);
}

void EndpointsTest::poolsServeOnlyTheirEndpoints() {
  auto e = startFromYaml(engineYaml(kEmbedSim, R"(pools:
  - {model: m, backends: [a], endpoints: [embeddings], owned_by: acme}
api:
  passthrough_routes: [/v1/classify]
)"));
  const uint16_t port = e->port();
  auto chat = post(port, "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  QCOMPARE(chat.status, 404);
  QCOMPARE(str(jsonObject(chat.body)[u"error"][u"code"]), "unsupported_endpoint");
  QCOMPARE(post(port, "/v1/embeddings", batch({"ok"})).status, 200);
  // The configured list replaces the default one.
  QCOMPARE(post(port, "/v1/rerank", R"({"model":"m"})").status, 404);
  const QJsonObject models = jsonObject(httpRequest(port, "GET", "/v1/models?include=endpoints").body);
  QCOMPARE(str(models[u"data"][0][u"owned_by"]), "acme");
  QCOMPARE(models[u"data"][0][u"endpoints"].toArray().size(), 1);
  QVERIFY(jsonObject(httpRequest(port, "GET", "/v1/models").body)[u"data"][0][u"endpoints"].isUndefined());
}

QTEST_APPLESS_MAIN(EndpointsTest)
