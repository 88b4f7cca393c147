// Cache keys: what makes two requests "the same question".
//
// A key is xxh3-128 over a canonical form of the request — every field that
// can change the answer, with object keys sorted, insignificant whitespace
// gone, numbers written one way (1, 1.0 and 1e0 agree) and OpenAI's
// defaults filled in (a missing temperature is 1, not 0; top_p 1, n 1,
// penalties 0; max_completion_tokens is max_tokens) — plus the scope it
// lives in: the pool's model and configured model version, the endpoint,
// and the tenant when entries are scoped per tenant. Fields that only change
// the answer's *form* or bookkeeping (stream, stream_options, user) are left
// out: a JSON answer and a stream of the same question share one entry, and
// the replay gives each caller the form it asked for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "openai/openai.h"

namespace spillway::cache {

struct CacheKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const CacheKey&) const = default;
  std::string hex() const;  // 32 hex digits, hi then lo
  static std::optional<CacheKey> fromHex(std::string_view hex);
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const { return static_cast<size_t>(k.lo ^ (k.hi * 0x9e3779b97f4a7c15ull)); }
};

// The request's canonical form (the text the key hashes, less the scope), or
// nullopt for a body that is not a JSON object. Also says whether the
// request is deterministic: temperature 0 (after defaults), or a seed.
struct Canonical {
  std::string text;
  bool deterministic = false;
};
std::optional<Canonical> canonicalRequest(std::string_view body);

// An embeddings request split per input: the canonical form of its other
// fields (`rest`, what every input's key shares: model, encoding_format,
// dimensions, ...) and each input's canonical JSON (a string or a token
// array), in order; `single` when "input" was one string or one token array
// rather than a list. nullopt for a body without a usable "input".
struct EmbeddingItems {
  std::string rest;
  std::vector<std::string> items;
  bool single = false;
};
std::optional<EmbeddingItems> canonicalEmbeddingItems(std::string_view body);

// Where an entry lives: the key of one question in one scope.
struct KeyScope {
  std::string_view model;          // the pool's model (the backend model that answers)
  std::string_view model_version;  // cache.model_versions, "" when none
  openai::Endpoint endpoint = openai::Endpoint::kChatCompletions;
  std::string_view tenant;  // "" when shared
};
CacheKey makeKey(const KeyScope& scope, std::string_view canonical_text);

}  // namespace spillway::cache
