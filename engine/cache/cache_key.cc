#include "cache/cache_key.h"

#include <simdjson.h>
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "common/json_writer.h"

namespace spillway::cache {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Fields that change only the answer's form or bookkeeping.
bool formOnly(std::string_view key) { return key == "stream" || key == "stream_options" || key == "user"; }

// Numbers are written one way whatever their spelling (1, 1.0 and 1e0
// agree): integral values as exact integers — from the parsed integer
// itself, never through a double, so that two integers past 2^53 (a seed,
// a max_tokens) stay two keys — everything else in the shortest form that
// reads back to the same double.
template <typename Int>
void appendInteger(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void appendNumber(std::string& out, double v) {
  char buf[32];
  if (std::isfinite(v) && v == std::trunc(v)) {
    if (std::fabs(v) < 9.2e18) return appendInteger(out, static_cast<int64_t>(v));
    if (v > 0 && v < 18446744073709551616.0) return appendInteger(out, static_cast<uint64_t>(v));  // < 2^64
    // Past every integer type: scientific, which reads back as this double
    // (all digits would read back as an integer too large to parse).
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    out.append(buf, end);
    return;
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  out.append(buf, end);
}

void canonical(std::string& out, element e) {
  switch (e.type()) {
    case element_type::OBJECT: {
      simdjson::dom::object obj = e.get_object().value_unsafe();
      std::vector<std::pair<std::string_view, element>> fields;
      for (auto f : obj) fields.emplace_back(f.key, f.value);
      std::stable_sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out.push_back('{');
      bool first = true;
      for (const auto& [k, v] : fields) {
        if (!first) out.push_back(',');
        first = false;
        common::appendJsonString(out, k);
        out.push_back(':');
        canonical(out, v);
      }
      out.push_back('}');
      break;
    }
    case element_type::ARRAY: {
      simdjson::dom::array arr = e.get_array().value_unsafe();
      out.push_back('[');
      bool first = true;
      for (auto v : arr) {
        if (!first) out.push_back(',');
        first = false;
        canonical(out, v);
      }
      out.push_back(']');
      break;
    }
    case element_type::STRING:
      common::appendJsonString(out, e.get_string().value_unsafe());
      break;
    case element_type::INT64: appendInteger(out, e.get_int64().value_unsafe()); break;
    case element_type::UINT64: appendInteger(out, e.get_uint64().value_unsafe()); break;
    case element_type::DOUBLE: appendNumber(out, e.get_double().value_unsafe()); break;
    case element_type::BOOL: out.append(e.get_bool().value_unsafe() ? "true" : "false"); break;
    case element_type::NULL_VALUE: out.append("null"); break;
  }
}

// OpenAI's defaults for sampling fields a request may leave out: with them
// filled in, `{}` and `{"temperature":1}` are the same question.
struct Default {
  std::string_view key;
  std::string_view value;
};
constexpr Default kDefaults[] = {
    {"frequency_penalty", "0"}, {"n", "1"}, {"presence_penalty", "0"}, {"temperature", "1"}, {"top_p", "1"},
};

// Fields as (key, canonical value): written as one object, keys sorted.
using Fields = std::vector<std::pair<std::string_view, std::string>>;
void appendSortedObject(std::string& out, Fields& fields) {
  std::stable_sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out.push_back('{');
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(',');
    common::appendJsonString(out, fields[i].first);
    out.push_back(':');
    out.append(fields[i].second);
  }
  out.push_back('}');
}

}  // namespace

std::optional<Canonical> canonicalRequest(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) return std::nullopt;
  simdjson::dom::object obj = root.get_object().value_unsafe();

  // (key, canonical value) with form-only fields dropped, synonyms merged
  // and defaults filled, then sorted.
  Fields fields;
  fields.reserve(16);
  bool has_seed = false;
  for (auto f : obj) {
    std::string_view k = f.key;
    if (formOnly(k)) continue;
    if (k == "max_completion_tokens") k = "max_tokens";
    if (k == "seed" && !f.value.is_null()) has_seed = true;
    std::string v;
    canonical(v, f.value);
    if (v == "null") continue;  // an explicit null is OpenAI's default, as if absent
    fields.emplace_back(k, std::move(v));
  }
  for (const auto& d : kDefaults) {
    if (std::none_of(fields.begin(), fields.end(), [&](const auto& f) { return f.first == d.key; })) {
      fields.emplace_back(d.key, std::string(d.value));
    }
  }
  Canonical c;
  c.text.reserve(body.size() + 64);
  appendSortedObject(c.text, fields);
  c.deterministic = has_seed || std::any_of(fields.begin(), fields.end(), [](const auto& f) {
                      return f.first == "temperature" && f.second == "0";
                    });
  return c;
}

std::optional<EmbeddingItems> canonicalEmbeddingItems(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) return std::nullopt;
  simdjson::dom::object obj = root.get_object().value_unsafe();
  EmbeddingItems out;
  Fields fields;
  bool has_input = false;
  for (auto f : obj) {
    const std::string_view k = f.key;
    if (k == "input") {
      has_input = true;
      element in = f.value;
      // One string or one token array is one input; otherwise each element is.
      bool tokens = in.is_array() && in.get_array().value_unsafe().size() > 0;
      if (tokens) {
        simdjson::dom::array a = in.get_array().value_unsafe();
        for (element e : a) tokens = tokens && (e.is_int64() || e.is_uint64());
      }
      if (in.is_string() || tokens) {
        out.single = true;
        canonical(out.items.emplace_back(), in);
      } else if (in.is_array()) {
        simdjson::dom::array a = in.get_array().value_unsafe();
        for (element e : a) canonical(out.items.emplace_back(), e);
      } else {
        return std::nullopt;
      }
      continue;
    }
    if (formOnly(k)) continue;
    std::string v;
    canonical(v, f.value);
    if (v == "null") continue;
    fields.emplace_back(k, std::move(v));
  }
  if (!has_input || out.items.empty()) return std::nullopt;
  appendSortedObject(out.rest, fields);
  return out;
}

CacheKey makeKey(const KeyScope& scope, std::string_view canonical_text) {
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  // Each part ends with a 0 byte so ("ab","c") and ("a","bc") differ.
  auto part = [&](std::string_view s) {
    XXH3_128bits_update(&state, s.data(), s.size());
    const char zero = 0;
    XXH3_128bits_update(&state, &zero, 1);
  };
  part(scope.model);
  part(scope.model_version);
  // Chat's name stays "chat" so entries stored before other endpoints
  // existed keep their keys.
  part(scope.endpoint == openai::Endpoint::kChatCompletions ? std::string_view("chat")
                                                            : openai::endpointName(scope.endpoint));
  part(scope.tenant);
  XXH3_128bits_update(&state, canonical_text.data(), canonical_text.size());
  const XXH128_hash_t h = XXH3_128bits_digest(&state);
  return {h.low64, h.high64};
}

std::string CacheKey::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kDigits[(hi >> (4 * i)) & 0xf];
    out[31 - i] = kDigits[(lo >> (4 * i)) & 0xf];
  }
  return out;
}

std::optional<CacheKey> CacheKey::fromHex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  CacheKey k;
  auto r1 = std::from_chars(hex.data(), hex.data() + 16, k.hi, 16);
  auto r2 = std::from_chars(hex.data() + 16, hex.data() + 32, k.lo, 16);
  if (r1.ec != std::errc() || r1.ptr != hex.data() + 16 || r2.ec != std::errc() || r2.ptr != hex.data() + 32) {
    return std::nullopt;
  }
  return k;
}

}  // namespace spillway::cache
