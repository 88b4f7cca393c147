#include "cache/embedding_items.h"

#include <simdjson.h>

#include <unordered_set>

#include "common/json_writer.h"
#include "common/strings.h"
#include "openai/openai.h"

namespace spillway::cache {

std::shared_ptr<ItemPlan> planItems(std::string_view body, const Settings& settings, const std::string& model,
                                    std::string_view tenant) {
  auto split = canonicalEmbeddingItems(body);
  if (!split) return nullptr;
  auto plan = std::make_shared<ItemPlan>();
  plan->model = model;
  plan->tenant = std::string(tenant);
  plan->keys.reserve(split->items.size());
  std::string text;
  for (const auto& item : split->items) {
    // rest, a separator no canonical JSON contains, the input.
    text.assign(split->rest).push_back('\x1e');
    text.append(item);
    plan->keys.push_back(settings.keyFor(model, openai::Endpoint::kEmbeddings, tenant, text));
  }
  plan->inputs = std::move(split->items);
  plan->distinct = std::unordered_set<CacheKey, CacheKeyHash>(plan->keys.begin(), plan->keys.end()).size();
  return plan;
}

void findInMemory(ItemPlan& plan, ResponseCache& cache) {
  const int64_t now = cache.nowMs();
  for (const CacheKey& k : plan.keys) {
    if (plan.vectors.contains(k)) continue;
    Found f = cache.findMemory(k, now, /*grace_ms=*/0);
    if (f && !f.stale) plan.vectors.emplace(k, f.entry->body);
  }
}

common::Awaitable<void> findInSlowTiers(std::shared_ptr<ItemPlan> plan, ResponseCache& cache) {
  const int64_t now = cache.nowMs();
  for (const CacheKey& k : plan->keys) {
    if (plan->vectors.contains(k)) continue;
    Tier tier = Tier::kDisk;
    Found f = co_await cache.findSlow(k, plan->model, plan->tenant, now, &tier);
    if (f && !f.stale) {
      plan->vectors.emplace(k, f.entry->body);
      if (static_cast<int>(tier) > static_cast<int>(plan->deepest)) plan->deepest = tier;
    }
  }
}

void settle(ItemPlan& plan) {
  plan.hits = 0;
  plan.sent.clear();
  plan.sent_at.clear();
  std::unordered_set<CacheKey, CacheKeyHash> queued;
  for (size_t i = 0; i < plan.keys.size(); ++i) {
    const CacheKey& k = plan.keys[i];
    if (plan.vectors.contains(k)) {
      ++plan.hits;
    } else if (queued.insert(k).second) {
      plan.sent.push_back(k);
      plan.sent_at.push_back(i);
    }
  }
}

std::string upstreamBody(const ItemPlan& plan, std::string_view body) {
  if (plan.sent.size() == plan.keys.size()) return {};  // every input, each once: the body as it came
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) return {};
  common::JsonWriter j;
  j.beginObject();
  simdjson::dom::object fields = root.get_object().value_unsafe();  // a named copy: range-for must not bind a temporary
  for (auto field : fields) {
    if (field.key == "input") {
      j.key("input").beginArray();
      for (size_t i : plan.sent_at) j.raw(plan.inputs[i]);
      j.endArray();
    } else {
      j.key(field.key).raw(simdjson::minify(field.value));
    }
  }
  j.endObject();
  return j.take();
}

std::string assembleAnswer(const ItemPlan& plan, std::string_view model, uint64_t prompt_tokens) {
  common::JsonWriter j;
  j.beginObject().key("object").value("list").key("data").beginArray();
  for (size_t i = 0; i < plan.keys.size(); ++i) {
    j.beginObject().key("object").value("embedding").key("index").value(static_cast<uint64_t>(i));
    j.key("embedding").raw(plan.vectors.at(plan.keys[i])).endObject();
  }
  j.endArray().key("model").value(model);
  j.key("usage").beginObject().key("prompt_tokens").value(prompt_tokens).key("total_tokens").value(prompt_tokens);
  j.endObject().endObject();
  return j.take();
}

std::string itemsHeader(const ItemPlan& plan) {
  return common::strCat("x-spillway-cache-items: ", plan.hits, "/", plan.keys.size(), "\r\n");
}

namespace {

openai::ApiError badAnswer(std::string_view why) {
  return {502, common::strCat("The upstream's embeddings answer could not be matched to the inputs sent: ", why, "."),
          "upstream_error", "", "upstream_error"};
}

}  // namespace

common::Awaitable<bool> ItemSink::answer(std::string_view body) {
  ItemPlan& plan = *plan_;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string error;
  std::string model;
  uint64_t prompt_tokens = 0;
  std::vector<std::pair<CacheKey, std::string>> received;
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) {
    error = "not a JSON object";
  } else {
    simdjson::dom::array data;
    std::string_view m;
    if (!root["model"].get(m)) model = std::string(m);
    if (auto usage = root["usage"]; !usage.error()) if (usage.value_unsafe()["prompt_tokens"].get(prompt_tokens)) {}
    if (root["data"].get(data)) {
      error = "no data array";
    } else if (data.size() != plan.sent.size()) {
      error = common::strCat(data.size(), " vectors for ", plan.sent.size(), " inputs");
    } else {
      std::vector<bool> seen(plan.sent.size(), false);
      for (simdjson::dom::element item : data) {
        uint64_t index = 0;
        simdjson::dom::element vector;
        if (item["index"].get(index) || index >= seen.size() || seen[index]) {
          error = "an index missing, out of range or repeated";
          break;
        }
        if (item["embedding"].get(vector)) {
          error = "an item without an embedding";
          break;
        }
        seen[index] = true;
        received.emplace_back(plan.sent[index], std::string(simdjson::minify(vector)));
      }
    }
  }
  upstream::ResponseHead head;
  head.status = 200;
  head.reason = reason_;
  head.content_type = "application/json";
  head.backend = backend_;
  if (!error.empty()) {
    const std::string e = openai::errorBody(badAnswer(error));
    head.status = 502;
    head.reason = "Bad Gateway";
    head.length = e.size();
    const bool sent = co_await next_.sendWhole(head, e);
    co_return sent;
  }
  const int64_t now = cache_.nowMs();
  for (auto& [key, vector] : received) {
    if (plan.store) {
      auto e = std::make_shared<Entry>();
      e->key = key;
      e->model = plan.model;
      e->tenant = plan.tenant;
      e->form = Form::kJson;
      e->created_ms = now;
      e->expires_ms = now;  // each tier sets its own TTL
      e->body = vector;
      cache_.store(std::move(e));
    }
    plan.vectors.insert_or_assign(key, std::move(vector));
  }
  cache_.countItems(plan.hits, static_cast<uint32_t>(plan.keys.size() - plan.hits));
  const std::string whole = assembleAnswer(plan, model, prompt_tokens);
  head.length = whole.size();
  const bool sent = co_await next_.sendWhole(head, whole);
  co_return sent;
}

common::Awaitable<bool> ItemSink::sendWhole(const upstream::ResponseHead& head, std::string_view body) {
  if (head.status != 200) {
    const bool sent = co_await next_.sendWhole(head, body);
    co_return sent;
  }
  reason_ = std::string(head.reason);
  backend_ = std::string(head.backend);
  const bool sent = co_await answer(body);
  co_return sent;
}

common::Awaitable<bool> ItemSink::sendHead(const upstream::ResponseHead& head) {
  if (head.status != 200) {
    const bool sent = co_await next_.sendHead(head);
    co_return sent;
  }
  buffering_ = true;
  reason_ = std::string(head.reason);
  backend_ = std::string(head.backend);
  co_return true;
}

common::Awaitable<bool> ItemSink::sendBody(std::string_view bytes) {
  if (!buffering_) {
    const bool sent = co_await next_.sendBody(bytes);
    co_return sent;
  }
  if (body_.size() + bytes.size() > max_bytes_) co_return false;  // ends the exchange; the client gets a 502
  body_.append(bytes);
  co_return true;
}

common::Awaitable<bool> ItemSink::sendEnd() {
  if (!buffering_) {
    const bool sent = co_await next_.sendEnd();
    co_return sent;
  }
  buffering_ = false;
  const bool sent = co_await answer(body_);
  co_return sent;
}

common::Awaitable<void> ItemSink::abort(std::string_view sse_error_event) {
  // Nothing of a buffered answer went out: the next sink sees a failure
  // before its head, which it reports like any upstream that broke off.
  co_await next_.abort(sse_error_event);
}

}  // namespace spillway::cache
