// Embeddings cached per input. An embedding depends only on its input and
// the request's other fields (model, encoding_format, dimensions), so each
// input of a batch is its own cache entry: a batch of 100 inputs of which 90
// are cached sends only the 10 missing ones upstream and gets its answer
// assembled in the original order, each vector under its own index.
//
// The plan is made by the cache stage (memory tier), completed by the slow
// tier stage (disk, Redis), and carried out by ItemSink, which sits between
// the upstream exchange and the cache's fill sink: it reads the upstream's
// partial answer, maps each vector back by the upstream's `index` (not by
// position), stores every new vector, and hands on the whole answer.
// Duplicate inputs within a batch are sent once.
//
// Usage in an assembled answer counts what the backend embedded for this
// request (the missing inputs); inputs answered from the cache cost no
// tokens, so a batch answered wholly from the cache reports 0.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/cache_key.h"
#include "cache/response_cache.h"
#include "upstream/response_sink.h"

namespace spillway::cache {

struct ItemPlan {
  std::vector<CacheKey> keys;       // per input, in order
  std::vector<std::string> inputs;  // each input's canonical JSON, in order
  size_t distinct = 0;              // distinct inputs (duplicates within a batch count once)
  std::string model;                // the pool's model (the entries' scope)
  std::string tenant;               // "" when shared
  bool store = true;                // Cache-Control: no-store leaves the cache as it is
  // The vector (raw JSON: a float array or a base64 string) of each distinct
  // input known so far: found in a tier or received from the upstream.
  std::unordered_map<CacheKey, std::string, CacheKeyHash> vectors;
  Tier deepest = Tier::kMemory;  // the slowest tier that answered an input
  // Set by settle():
  uint32_t hits = 0;             // inputs answered from the cache
  std::vector<CacheKey> sent;    // distinct inputs sent upstream, in the order sent
  std::vector<size_t> sent_at;   // where each of them first stands in the input

  bool complete() const { return vectors.size() == distinct; }
};

// The plan for an embeddings request under `settings` (keys per input), or
// null for a body without a usable input.
std::shared_ptr<ItemPlan> planItems(std::string_view body, const Settings& settings, const std::string& model,
                                    std::string_view tenant);
// Looks every input without a vector up in the memory tier.
void findInMemory(ItemPlan& plan, ResponseCache& cache);
// Then in the slower tiers (disk, Redis), one input at a time.
common::Awaitable<void> findInSlowTiers(std::shared_ptr<ItemPlan> plan, ResponseCache& cache);

// After the lookups: counts the hits and picks what goes upstream (each
// distinct missing input once).
void settle(ItemPlan& plan);
// The settled plan's request for the inputs it sends, or "" when the
// original body asks for exactly them.
std::string upstreamBody(const ItemPlan& plan, std::string_view body);

// The answer from the plan's vectors, in input order, with `model` and a
// usage of `prompt_tokens`.
std::string assembleAnswer(const ItemPlan& plan, std::string_view model, uint64_t prompt_tokens);

// The "x-spillway-cache-items: <hits>/<inputs>" line of an answer.
std::string itemsHeader(const ItemPlan& plan);

// Between the upstream exchange and the fill sink (see the top). A 200 is
// read whole, checked (one vector per input sent, indices unique and in
// range), stored per input and answered assembled; an answer that fails the
// check becomes a 502 (never another input's vector). Other statuses pass
// unchanged.
class ItemSink final : public upstream::ResponseSink {
 public:
  ItemSink(upstream::ResponseSink& next, ResponseCache& cache, std::shared_ptr<ItemPlan> plan, size_t max_bytes)
      : next_(next), cache_(cache), plan_(std::move(plan)), max_bytes_(max_bytes) {}

  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override;
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override;
  common::Awaitable<bool> sendBody(std::string_view bytes) override;
  common::Awaitable<bool> sendEnd() override;
  common::Awaitable<void> abort(std::string_view sse_error_event) override;
  bool started() const override { return next_.started(); }

 private:
  // The answer to send for the upstream's 200 `body`: assembled, or a 502.
  common::Awaitable<bool> answer(std::string_view body);

  upstream::ResponseSink& next_;
  ResponseCache& cache_;
  std::shared_ptr<ItemPlan> plan_;
  const size_t max_bytes_;  // largest upstream answer read whole
  bool buffering_ = false;  // a 200 being read whole
  std::string body_;
  // The upstream's head, kept while buffering (its views die with the exchange's parser).
  std::string reason_, backend_;
};

}  // namespace spillway::cache
