#include "cache_test.h"

#include <QTemporaryDir>
#include <QtTest>

#include <random>
#include <set>

#include "cache/bloom.h"
#include "cache/cache_key.h"
#include "cache/coalescer.h"
#include "cache/disk_tier.h"
#include "cache/memory_tier.h"
#include "cache/redis_tier.h"
#include "cache/replay.h"
#include "support/json.h"
#include "support/redis_server.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::cache;

namespace {

const std::string kBase =
    R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16})";

std::string canon(const std::string& body) {
  auto c = canonicalRequest(body);
  if (!c) qFatal("not canonicalisable: %s", body.c_str());
  return c->text;
}

CacheKey keyOf(const std::string& body, std::string_view tenant = "") {
  return makeKey({"m", "", openai::Endpoint::kChatCompletions, tenant}, canon(body));
}

EntryPtr entry(uint64_t n, int64_t expires_ms, std::string model = "m", std::string tenant = "", size_t bytes = 100) {
  auto e = std::make_shared<Entry>();
  e->key = {n * 0x9e3779b97f4a7c15ull + 1, n};
  e->model = std::move(model);
  e->tenant = std::move(tenant);
  e->body = std::string(bytes, 'x');
  e->created_ms = 0;
  e->expires_ms = expires_ms;
  return e;
}

// Unix ms in 2096: past any wall clock the tier's own maintenance uses.
constexpr int64_t kFarFuture = 4'000'000'000'000;

const std::string kJsonAnswer =
    R"({"id":"c1","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})";

std::vector<std::string> dataEvents(const std::string& sse) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    const size_t end = sse.find("\n\n", pos);
    out.push_back(sse.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

}  // namespace

void CacheTest::keyIgnoresOrderWhitespaceAndNumberSpelling() {
  const std::string shuffled =
      "{ \"max_tokens\" : 16.0,\n \"temperature\": 0.0, \"messages\": [ {\"content\": \"Hi\", \"role\": \"user\"} ],"
      " \"model\":\"m\" }";
  QCOMPARE(canon(shuffled), canon(kBase));
  QVERIFY(keyOf(shuffled) == keyOf(kBase));
  // Large integers too, however written (1e16 is 10000000000000000).
  QCOMPARE(canon(R"({"model":"m","seed":1e16})"), canon(R"({"model":"m","seed":10000000000000000})"));
  QCOMPARE(canon(R"({"model":"m","seed":9223372036854775807})"), canon(R"({ "seed" : 9223372036854775807, "model":"m"})"));
  // Form-only fields do not split entries: a stream and a JSON answer share one.
  const std::string streamed =
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"user":"u1","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16})";
  QVERIFY(keyOf(streamed) == keyOf(kBase));
  QVERIFY(canonicalRequest(kBase)->deterministic);
}

void CacheTest::keyAppliesOpenAiDefaults() {
  const std::string no_temperature = R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":16})";
  const std::string temperature_one =
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":16,"temperature":1,"top_p":1,"n":1})";
  QVERIFY(keyOf(no_temperature) == keyOf(temperature_one));  // missing temperature is 1...
  QVERIFY(!(keyOf(no_temperature) == keyOf(kBase)));         // ...not 0
  QVERIFY(!canonicalRequest(no_temperature)->deterministic);
  // A seed makes sampling repeatable.
  QVERIFY(canonicalRequest(R"({"model":"m","messages":[],"seed":4})")->deterministic);
  // max_completion_tokens is max_tokens.
  QVERIFY(keyOf(R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_completion_tokens":16})") ==
          keyOf(kBase));
  QVERIFY(!canonicalRequest("[1,2]"));
  QVERIFY(!canonicalRequest("{broken"));
}

void CacheTest::keyChangesWithEveryParameterThatChangesTheAnswer() {
  const std::vector<std::string> variants = {
      R"({"model":"m","messages":[{"role":"user","content":"Hi!"}],"temperature":0,"max_tokens":16})",
      R"({"model":"m","messages":[{"role":"system","content":"Hi"}],"temperature":0,"max_tokens":16})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":17})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0.2,"max_tokens":16})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"top_p":0.9})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"n":2})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"stop":["\n"]})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"seed":1})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"presence_penalty":0.5})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"frequency_penalty":0.5})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"logit_bias":{"50256":-100}})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"response_format":{"type":"json_object"}})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"tools":[{"type":"function","function":{"name":"f"}}]})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"tool_choice":"none"})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"logprobs":true})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"vendor_option":1})",
      // Integers past 2^53 stay apart (found by the cache_key fuzz target:
      // through a double, these two seeds were one key).
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"seed":9007199254740993})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"seed":9007199254740992})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"seed":18446744073709551615})",
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":16,"seed":18446744073709551614})",
  };
  std::set<std::string> keys{keyOf(kBase).hex()};
  for (const auto& v : variants) {
    QVERIFY2(keys.insert(keyOf(v).hex()).second, v.c_str());
  }
}

void CacheTest::keyChangesWithScope() {
  const std::string c = canon(kBase);
  const CacheKey base = makeKey({"m", "", openai::Endpoint::kChatCompletions, ""}, c);
  QVERIFY(!(makeKey({"m2", "", openai::Endpoint::kChatCompletions, ""}, c) == base));
  QVERIFY(!(makeKey({"m", "v2", openai::Endpoint::kChatCompletions, ""}, c) == base));
  QVERIFY(!(makeKey({"m", "", openai::Endpoint::kCompletions, ""}, c) == base));
  QVERIFY(!(makeKey({"m", "", openai::Endpoint::kChatCompletions, "tenant-a"}, c) == base));
  // Parts are delimited: ("mv","") is not ("m","v").
  QVERIFY(!(makeKey({"mv", "", openai::Endpoint::kChatCompletions, ""}, c) ==
            makeKey({"m", "v", openai::Endpoint::kChatCompletions, ""}, c)));
  QCOMPARE(CacheKey::fromHex(base.hex()).value_or(CacheKey{}).hex(), base.hex());
  QVERIFY(!CacheKey::fromHex("not hex"));
}

void CacheTest::embeddingInputsAreKeyedOneByOne() {
  auto a = canonicalEmbeddingItems(R"({"model":"m","input":["x", "y"],"dimensions":8})");
  auto b = canonicalEmbeddingItems(R"({ "dimensions" : 8.0, "input":["y","x"], "user":"u", "model":"m"})");
  QVERIFY(a && b);
  QCOMPARE(a->rest, b->rest);  // order, spacing, number spelling and user aside
  QCOMPARE(a->items.size(), size_t{2});
  QCOMPARE(a->items[0], b->items[1]);
  QVERIFY(!a->single);
  auto c = canonicalEmbeddingItems(R"({"model":"m","input":["x"],"dimensions":8,"encoding_format":"base64"})");
  QVERIFY(c && c->rest != a->rest);  // another encoding is another answer
  auto tokens = canonicalEmbeddingItems(R"({"model":"m","input":[1,2,3]})");
  QVERIFY(tokens && tokens->single && tokens->items.size() == 1 && tokens->items[0] == "[1,2,3]");
  QVERIFY(!canonicalEmbeddingItems(R"({"model":"m"})"));
  QVERIFY(!canonicalEmbeddingItems(R"({"model":"m","input":[]})"));
  // Embeddings keys never meet chat keys with the same text.
  QVERIFY(!(makeKey({"m", "", openai::Endpoint::kEmbeddings, ""}, "t") ==
            makeKey({"m", "", openai::Endpoint::kChatCompletions, ""}, "t")));
}

void CacheTest::memoryTierServesFreshThenStaleThenNothing() {
  MemoryTier t(1 << 20);
  t.put(entry(1, /*expires_ms=*/1000));
  Found f = t.get(entry(1, 0)->key, 999, /*grace_ms=*/500);
  QVERIFY(f && !f.stale);
  f = t.get(entry(1, 0)->key, 1000, 500);
  QVERIFY(f && f.stale);
  QVERIFY(!t.get(entry(1, 0)->key, 1500, 500));
  QCOMPARE(t.stats().entries, uint64_t{0});
  QCOMPARE(t.stats().expirations, uint64_t{1});
  QVERIFY(!t.get(entry(2, 0)->key, 0, 0));
}

void CacheTest::memoryTierEvictsLeastRecentlyUsedBeyondBudget() {
  // 16 shards × 4 KiB; entries of ~1 KiB all in one shard (same top key bits).
  MemoryTier t(16 * 4096);
  auto in_shard = [](uint64_t n) {
    auto e = std::make_shared<Entry>();
    e->key = {n, 0x1000000000000000ull + n};  // same shard (hi >> 60)
    e->body = std::string(900, 'x');
    e->expires_ms = 1'000'000;
    return e;
  };
  for (uint64_t n = 0; n < 4; ++n) t.put(in_shard(n));  // 4 × 1028 B > 4096: the first went
  QVERIFY(!t.get(in_shard(0)->key, 0, 0));
  QVERIFY(t.get(in_shard(1)->key, 0, 0));  // touched: now the most recent
  t.put(in_shard(4));
  QVERIFY(t.get(in_shard(1)->key, 0, 0));
  QVERIFY(!t.get(in_shard(2)->key, 0, 0));  // the least recently used went
  QVERIFY(t.stats().bytes <= 4096);
  QCOMPARE(t.stats().evictions, uint64_t{2});
  // An entry larger than a shard's budget is not kept at all.
  auto huge = in_shard(9);
  huge->body = std::string(8192, 'x');
  t.put(huge);
  QVERIFY(!t.get(huge->key, 0, 0));
}

void CacheTest::memoryTierPurgesByModelAndTenant() {
  MemoryTier t(1 << 20);
  t.put(entry(1, 1000, "a", "t1"));
  t.put(entry(2, 1000, "a", "t2"));
  t.put(entry(3, 1000, "b", "t1"));
  QCOMPARE(t.purge("a", "t1"), uint64_t{1});
  QCOMPARE(t.purge("", "t1"), uint64_t{1});
  QCOMPARE(t.purge("", ""), uint64_t{1});
  QCOMPARE(t.stats().entries, uint64_t{0});
}

void CacheTest::diskTierSurvivesReopenWithoutFalseNegatives() {
  QTemporaryDir dir;
  const std::string path = (dir.path() + "/cache.db").toStdString();
  DiskTier::Settings s;
  s.bloom_entries = 10000;
  {
    auto t = DiskTier::open(path, s);
    QVERIFY(t.ok());
    for (uint64_t n = 0; n < 2000; ++n) (*t)->put(entry(n, kFarFuture, "m", "", 200));
    (*t)->flush();
    QCOMPARE((*t)->stats().entries, uint64_t{2000});
  }
  auto t = DiskTier::open(path, s);  // the Bloom filter is rebuilt from the file
  QVERIFY(t.ok());
  for (uint64_t n = 0; n < 2000; ++n) {
    QVERIFY((*t)->mayContain(entry(n, 0)->key));  // no false negatives
    Found f = (*t)->findNow(entry(n, 0)->key, 1000, 0);
    QVERIFY(f && !f.stale);
    QCOMPARE(f.entry->body.size(), size_t{200});
  }
  // Keys never stored: the filter answers nearly all without a disk read.
  const auto before = (*t)->stats();
  for (uint64_t n = 100000; n < 101000; ++n) QVERIFY(!(*t)->findNow(entry(n, 0)->key, 1000, 0));
  const auto after = (*t)->stats();
  QVERIFY(after.bloom_skips - before.bloom_skips >= 950);
  QCOMPARE(after.hits, before.hits);
}

void CacheTest::diskTierExpiresAndKeepsToItsSizeCap() {
  QTemporaryDir dir;
  DiskTier::Settings s;
  s.max_bytes = 1 << 20;
  s.bloom_entries = 10000;
  auto t = DiskTier::open((dir.path() + "/cache.db").toStdString(), s);
  QVERIFY(t.ok());
  (*t)->put(entry(1, /*expires_ms=*/1000));
  (*t)->flush();
  QVERIFY((*t)->findNow(entry(1, 0)->key, 1200, /*grace_ms=*/500).stale);
  (*t)->maintain(1600, 500);  // past the grace: deleted
  QVERIFY(!(*t)->findNow(entry(1, 0)->key, 0, 0));
  QCOMPARE((*t)->stats().expirations, uint64_t{1});
  // 300 entries of ~10 KB against a 1 MiB cap: trimmed to 90 % of it.
  for (uint64_t n = 10; n < 310; ++n) (*t)->put(entry(n, kFarFuture, "m", "", 10'000));
  (*t)->flush();
  const auto st = (*t)->stats();
  QVERIFY2(st.bytes <= (1u << 20), qPrintable(QString::number(st.bytes)));
  QVERIFY(st.evictions > 0);
  QVERIFY((*t)->findNow(entry(309, 0)->key, 0, 0));  // the newest stayed
}

void CacheTest::diskTierPurgeRebuildsTheBloomFilter() {
  QTemporaryDir dir;
  DiskTier::Settings s;
  s.bloom_entries = 10000;
  auto t = DiskTier::open((dir.path() + "/cache.db").toStdString(), s);
  QVERIFY(t.ok());
  for (uint64_t n = 0; n < 100; ++n) (*t)->put(entry(n, kFarFuture, n % 2 ? "a" : "b", "t"));
  (*t)->flush();
  QCOMPARE((*t)->purge("a", ""), uint64_t{50});
  QVERIFY(!(*t)->mayContain(entry(1, 0)->key));  // rebuilt without the purged keys
  QVERIFY((*t)->mayContain(entry(2, 0)->key));
  QCOMPARE((*t)->purge("", ""), uint64_t{50});
  QCOMPARE((*t)->stats().entries, uint64_t{0});
}

void CacheTest::bloomFilterFalsePositiveRateNearTarget() {
  BloomFilter b(10000, 0.01);
  QCOMPARE(b.hashes(), 7u);
  std::mt19937_64 rng(7);
  std::vector<CacheKey> in;
  for (int i = 0; i < 10000; ++i) in.push_back({rng(), rng()});
  for (const auto& k : in) b.insert(k);
  for (const auto& k : in) QVERIFY(b.mayContain(k));
  int fp = 0;
  for (int i = 0; i < 100000; ++i) fp += b.mayContain({rng(), rng()}) ? 1 : 0;
  QVERIFY2(fp < 1500, qPrintable(QString::number(fp)));  // 1 % target, measured ~1 %
  QVERIFY(b.estimatedFalsePositiveRate() > 0.005 && b.estimatedFalsePositiveRate() < 0.015);
}

void CacheTest::replayTurnsJsonIntoAnEquivalentStream() {
  Entry e;
  e.form = Form::kJson;
  e.body = kJsonAnswer;
  auto r = replay(e, {openai::Endpoint::kChatCompletions, true, true});
  QVERIFY(r);
  QCOMPARE(std::string(r->content_type), std::string("text/event-stream"));
  auto events = dataEvents(r->body);
  QCOMPARE(events.size(), size_t{4});
  QCOMPARE(events.back(), std::string("[DONE]"));
  auto first = testing::jsonObject(events[0]);
  QCOMPARE(first[u"object"].toString(), QString("chat.completion.chunk"));
  QCOMPARE(first[u"choices"][0][u"delta"][u"content"].toString(), QString("Hello there"));
  auto finish = testing::jsonObject(events[1]);
  QCOMPARE(finish[u"choices"][0][u"finish_reason"].toString(), QString("stop"));
  auto usage = testing::jsonObject(events[2]);
  QCOMPARE(usage[u"usage"][u"total_tokens"].toInt(), 5);
  // And back: the stream replays as the same completion.
  Entry s;
  s.form = streamForm(r->body);
  QCOMPARE(int(s.form), int(Form::kSseUsage));
  s.body = r->body;
  auto j = replay(s, {openai::Endpoint::kChatCompletions, false, false});
  QVERIFY(j);
  auto a = testing::jsonObject(j->body);
  auto b = testing::jsonObject(kJsonAnswer);
  QCOMPARE(a[u"choices"][0][u"message"][u"content"].toString(), b[u"choices"][0][u"message"][u"content"].toString());
  QCOMPARE(a[u"choices"][0][u"finish_reason"].toString(), QString("stop"));
  QCOMPARE(a[u"usage"][u"completion_tokens"].toInt(), 2);
  QCOMPARE(a[u"object"].toString(), QString("chat.completion"));
  // A completion (not chat) stream.
  Entry c;
  c.form = Form::kJson;
  c.body = R"({"id":"x","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"abc","finish_reason":"length","logprobs":null}]})";
  auto cs = replay(c, {openai::Endpoint::kCompletions, true, false});
  QVERIFY(cs);
  QCOMPARE(testing::jsonObject(dataEvents(cs->body)[0])[u"choices"][0][u"text"].toString(), QString("abc"));
  // Usage asked of a JSON entry without usage: cannot be given.
  QVERIFY(!replay(c, {openai::Endpoint::kCompletions, true, true}));
}

void CacheTest::replayTurnsAStreamIntoJsonWithToolCalls() {
  Entry e;
  e.form = Form::kSse;
  e.body =
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}]}\n\n"
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Oslo\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,"
      "\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: [DONE]\n\n";
  auto j = replay(e, {openai::Endpoint::kChatCompletions, false, false});
  QVERIFY(j);
  auto a = testing::jsonObject(j->body);
  const auto call = a[u"choices"][0][u"message"][u"tool_calls"][0];
  QCOMPARE(call[u"id"].toString(), QString("call_1"));
  QCOMPARE(call[u"function"][u"name"].toString(), QString("get_weather"));
  QCOMPARE(call[u"function"][u"arguments"].toString(), QString(R"({"city":"Oslo"})"));
  QVERIFY(a[u"choices"][0][u"message"][u"content"].isNull());
  QCOMPARE(a[u"choices"][0][u"finish_reason"].toString(), QString("tool_calls"));
  // Round trip back into a stream keeps the call.
  Entry back;
  back.form = Form::kJson;
  back.body = j->body;
  auto s = replay(back, {openai::Endpoint::kChatCompletions, true, false});
  QVERIFY(s);
  QCOMPARE(testing::jsonObject(dataEvents(s->body)[0])[u"choices"][0][u"delta"][u"tool_calls"][0][u"function"][u"arguments"]
               .toString(),
           QString(R"({"city":"Oslo"})"));
}

void CacheTest::replayLeavesOutUsageUnlessAsked() {
  Entry json;
  json.form = Form::kJson;
  json.body = kJsonAnswer;
  const std::string with_usage = replay(json, {openai::Endpoint::kChatCompletions, true, true})->body;
  Entry e;
  e.form = Form::kSseUsage;
  e.body = with_usage;
  auto plain = replay(e, {openai::Endpoint::kChatCompletions, true, false});
  QVERIFY(plain);
  QVERIFY(plain->body.find("\"usage\"") == std::string::npos);
  QCOMPARE(dataEvents(plain->body).size(), size_t{3});
  QCOMPARE(dataEvents(plain->body).back(), std::string("[DONE]"));
  // A stream stored without usage cannot answer a caller that asks for it.
  Entry no_usage;
  no_usage.form = Form::kSse;
  no_usage.body = plain->body;
  QVERIFY(!replay(no_usage, {openai::Endpoint::kChatCompletions, true, true}));
  QVERIFY(replay(no_usage, {openai::Endpoint::kChatCompletions, true, false}));
}

void CacheTest::coalescerHasOneLeaderPerKey() {
  Coalescer c;
  const CacheKey k{1, 2};
  auto a = c.join(k, {}, 1024);
  auto b = c.join(k, {}, 1024);
  QVERIFY(a.leader);
  QVERIFY(!b.leader);
  QCOMPARE(a.flight, b.flight);
  QCOMPARE(a.flight->waiters(), size_t{1});
  QVERIFY(c.join({3, 4}, {}, 1024).leader);  // another key: its own flight
  a.flight->begin("application/json");
  QVERIFY(a.flight->append("12345"));
  QVERIFY(!a.flight->append(std::string(2000, 'x')));  // past the cap: failed
  QCOMPARE(int(a.flight->state()), int(Flight::State::kFailed));
  c.leave(k, a.flight);
  QVERIFY(c.join(k, {}, 1024).leader);  // the next one leads anew
}

void CacheTest::redisTierSharesEntriesAndSurvivesARestart() {
  testing::RedisServer redis;
  QVERIFY2(redis.start(), qPrintable(redis.error()));
  RedisTier::Settings s;
  s.link.port = redis.port();
  s.link.timeout = std::chrono::milliseconds(200);
  auto e = entry(1, 10'000'000, "model-a", "tenant-1");
  {
    RedisTier writer(s);
    writer.put(e);
    writer.put(entry(2, 10'000'000, "model-b", "tenant-1"));
    writer.flush();
    QCOMPARE(writer.stats().writes, uint64_t{2});
  }
  RedisTier reader(s);  // another replica
  Found f = reader.findNow(e->key, "model-a", "tenant-1", 1000);
  QVERIFY(f && !f.stale);
  QCOMPARE(f.entry->body, e->body);
  QVERIFY(!reader.findNow(e->key, "model-a", "tenant-2", 1000));  // another tenant's scope
  QCOMPARE(reader.purge("model-b", ""), uint64_t{1});
  QVERIFY(reader.findNow(e->key, "model-a", "tenant-1", 1000));

  redis.kill();
  QVERIFY(!reader.findNow(e->key, "model-a", "tenant-1", 1000));  // skipped, not waited on
  QVERIFY(!reader.up());
  QVERIFY(reader.stats().errors + reader.stats().skipped > 0);
  reader.put(entry(3, 10'000'000));  // dropped while down, never an error to the caller

  testing::RedisServer again;
  QVERIFY2(again.start(redis.port()), qPrintable(again.error()));
  // Back within about a second (the reconnect interval).
  QVERIFY(testing::waitFor([&] {
    reader.put(e);
    reader.flush();
    return reader.up() && reader.findNow(e->key, "model-a", "tenant-1", 1000);
  }));
}

QTEST_APPLESS_MAIN(CacheTest)
