// The cache key canonicaliser, with its promise as properties:
//  - two requests that differ only in key order, whitespace or the
//    spelling of strings and numbers get the same canonical form (and key);
//  - a request that asks another question (another model) gets another;
//  - the canonical form is a fixed point (canonicalising it changes nothing);
//  - the same text in another scope (tenant) gets another key.
// Inputs with duplicate keys are left out of the reordering property: a
// backend reads the last of them, so their order is part of the question.
#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_key.h"
#include "common/json_writer.h"
#include "fuzz_check.h"

namespace cache = spillway::cache;
using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

// `e` written again with every object's keys in reverse order, whitespace
// around every token, strings escaped anew, and (at the top level) the
// model replaced by `model` when given. False when an object repeats a key
// or nesting is deep (left out).
bool respell(std::string& out, element e, int depth, const std::string* model) {
  if (depth > 64) return false;
  switch (e.type()) {
    case element_type::OBJECT: {
      std::vector<std::pair<std::string_view, element>> fields;
      // Copied out of the result first: ranging over value_unsafe() of a
      // temporary would range over a destroyed object.
      const simdjson::dom::object obj = e.get_object().value_unsafe();
      for (auto f : obj) fields.emplace_back(f.key, f.value);
      for (size_t i = 0; i < fields.size(); ++i) {
        for (size_t j = i + 1; j < fields.size(); ++j) {
          if (fields[i].first == fields[j].first) return false;
        }
      }
      out.append("{ \n");
      for (size_t i = fields.size(); i-- > 0;) {
        spillway::common::appendJsonString(out, fields[i].first);
        out.append(" :\t");
        if (depth == 0 && model && fields[i].first == "model") {
          spillway::common::appendJsonString(out, *model);
        } else if (!respell(out, fields[i].second, depth + 1, nullptr)) {
          return false;
        }
        if (i) out.append(" ,\r\n");
      }
      out.append(" }");
      return true;
    }
    case element_type::ARRAY: {
      out.append("[ ");
      bool first = true;
      const simdjson::dom::array arr = e.get_array().value_unsafe();
      for (auto v : arr) {
        if (!first) out.append(" , ");
        first = false;
        if (!respell(out, v, depth + 1, nullptr)) return false;
      }
      out.append(" ]");
      return true;
    }
    case element_type::STRING: spillway::common::appendJsonString(out, e.get_string().value_unsafe()); return true;
    case element_type::INT64: out.append(std::to_string(e.get_int64().value_unsafe())); return true;
    case element_type::UINT64: out.append(std::to_string(e.get_uint64().value_unsafe())); return true;
    case element_type::DOUBLE: {
      char buf[32];
      // Scientific: another spelling of the same double (16.0 as 1.6e+01).
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, e.get_double().value_unsafe(), std::chars_format::scientific);
      out.append(buf, end);
      return true;
    }
    case element_type::BOOL: out.append(e.get_bool().value_unsafe() ? " true" : "false "); return true;
    case element_type::NULL_VALUE: out.append("null"); return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)cache::canonicalEmbeddingItems(body);
  const auto canon = cache::canonicalRequest(body);
  if (!canon) return 0;

  const auto again = cache::canonicalRequest(canon->text);
  FUZZ_CHECK(again && again->text == canon->text, "the canonical form is a fixed point");
  FUZZ_CHECK(again->deterministic == canon->deterministic, "canonicalising keeps determinism");

  const cache::KeyScope shared{"m", "", spillway::openai::Endpoint::kChatCompletions, ""};
  const cache::KeyScope tenant{"m", "", spillway::openai::Endpoint::kChatCompletions, "t"};
  FUZZ_CHECK(!(cache::makeKey(shared, canon->text) == cache::makeKey(tenant, canon->text)),
             "another tenant's scope gets another key");

  simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size(), true).get(root)) return 0;
  std::string respelled;
  if (!respell(respelled, root, 0, nullptr)) return 0;
  const auto same = cache::canonicalRequest(respelled);
  FUZZ_CHECK(same && same->text == canon->text, "key order, whitespace and spelling do not change the key");
  FUZZ_CHECK(cache::makeKey(shared, same->text) == cache::makeKey(shared, canon->text), "same text, same key");

  // Another model is another question.
  std::string_view model;
  if (!root["model"].get_string().get(model)) {
    const std::string other = std::string(model) + "-other";
    std::string changed;
    if (respell(changed, root, 0, &other)) {
      const auto different = cache::canonicalRequest(changed);
      FUZZ_CHECK(different && different->text != canon->text, "another model gets another key");
    }
  }
  return 0;
}
