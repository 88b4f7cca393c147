#include "sim/sim_answers.h"

#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>

#include "common/json_writer.h"
#include "common/strings.h"

namespace spillway::sim {

namespace {

using simdjson::dom::element;

openai::ApiError invalid(std::string_view param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::string(param), "invalid_value"};
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string base64(const std::vector<float>& v) {
  std::string raw(v.size() * 4, '\0');
  std::memcpy(raw.data(), v.data(), raw.size());  // little-endian float32, as OpenAI sends
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Lower-case words of `text`.
std::set<std::string> words(std::string_view text) {
  std::set<std::string> out;
  std::string w;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!w.empty()) {
      out.insert(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) out.insert(std::move(w));
  return out;
}

// `body` as a JSON object into `root` (which lives as long as `parser`), or
// the 400 for a body that is not one.
std::optional<openai::ApiError> parseObject(simdjson::dom::parser& parser, std::string_view body, element& root) {
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) {
    return openai::invalidJson("the body must be a JSON object");
  }
  return std::nullopt;
}

double overlap(const std::set<std::string>& query, std::string_view doc) {
  if (query.empty()) return 0;
  const auto d = words(doc);
  size_t n = 0;
  for (const auto& w : query) n += d.count(w);
  return static_cast<double>(n) / static_cast<double>(query.size());
}

std::string_view documentText(element d) {
  std::string_view t;
  if (d.is_string()) return d.get_string().value_unsafe();
  if (d.is_object() && !d["text"].get(t)) return t;
  return {};
}

}  // namespace

std::vector<float> embeddingOf(std::string_view text, uint32_t dimensions) {
  uint64_t s = 1469598103934665603ull;
  for (char c : text) s = (s ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::vector<float> v(dimensions);
  double norm = 0;
  for (auto& x : v) {
    x = static_cast<float>(static_cast<double>(splitmix(s) >> 11) / static_cast<double>(1ull << 53) * 2 - 1);
    norm += static_cast<double>(x) * x;
  }
  norm = std::sqrt(norm);
  for (auto& x : v) x = static_cast<float>(x / (norm > 0 ? norm : 1));
  return v;
}

std::variant<Embedded, openai::ApiError> embeddings(std::string_view body, uint32_t dimensions) {
  simdjson::dom::parser parser;
  element root;
  if (auto e = parseObject(parser, body, root)) return *e;
  std::string_view model, format = "float";
  if (root["model"].get(model)) {}
  if (root["encoding_format"].get(format)) {}
  uint64_t dims = dimensions;
  if (!root["dimensions"].get(dims) && (dims < 1 || dims > dimensions)) {
    return invalid("dimensions", common::strCat("'dimensions' must be between 1 and ", dimensions, "."));
  }
  // Each input as text: strings as they are, token arrays as their ids.
  std::vector<std::string> inputs;
  element in = root["input"].value_unsafe();
  auto tokenText = [](element a) {
    std::string t;
    simdjson::dom::array ids = a.get_array().value_unsafe();
    for (element id : ids) t += common::strCat(id.is_int64() ? id.get_int64().value_unsafe() : 0, " ");
    return t;
  };
  auto isTokens = [](element a) {
    if (!a.is_array()) return false;
    simdjson::dom::array ids = a.get_array().value_unsafe();
    for (element id : ids) {
      if (!id.is_int64()) return false;
    }
    return true;
  };
  if (in.is_string()) {
    inputs.emplace_back(in.get_string().value_unsafe());
  } else if (isTokens(in)) {
    inputs.push_back(tokenText(in));
  } else if (in.is_array()) {
    simdjson::dom::array items = in.get_array().value_unsafe();
    for (element e : items) inputs.push_back(e.is_string() ? std::string(e.get_string().value_unsafe()) : tokenText(e));
  }
  Embedded out;
  common::JsonWriter j;
  j.beginObject().key("object").value("list").key("data").beginArray();
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<float> v = embeddingOf(inputs[i], dimensions);
    if (dims < dimensions) {  // shortened, then normalised again (as text-embedding-3 does)
      v.resize(dims);
      double norm = 0;
      for (float x : v) norm += static_cast<double>(x) * x;
      norm = std::sqrt(norm);
      for (auto& x : v) x = static_cast<float>(x / (norm > 0 ? norm : 1));
    }
    j.beginObject().key("object").value("embedding").key("index").value(static_cast<uint64_t>(i)).key("embedding");
    if (format == "base64") {
      j.value(base64(v));
    } else {
      j.beginArray();
      for (float x : v) j.value(static_cast<double>(x));
      j.endArray();
    }
    j.endObject();
    out.tokens += std::max<uint32_t>(1, openai::countTokens(inputs[i]));
  }
  j.endArray().key("model").value(model);
  j.key("usage").beginObject().key("prompt_tokens").value(out.tokens).key("total_tokens").value(out.tokens);
  j.endObject().endObject();
  out.body = j.take();
  out.inputs = static_cast<uint32_t>(inputs.size());
  return out;
}

namespace {

void outputItem(common::JsonWriter& j, const ResponseParts& p, std::string_view status, std::string_view text,
                bool with_content) {
  j.beginObject().key("type").value("message").key("id").value(p.item_id).key("status").value(status);
  j.key("role").value("assistant").key("content").beginArray();
  if (with_content) {
    j.beginObject().key("type").value("output_text").key("text").value(text);
    j.key("annotations").beginArray().endArray().endObject();
  }
  j.endArray().endObject();
}

std::string event(std::string_view type, uint32_t& seq, const std::function<void(common::JsonWriter&)>& fields) {
  common::JsonWriter j;
  j.beginObject().key("type").value(type).key("sequence_number").value(seq++);
  fields(j);
  j.endObject();
  return openai::sseEvent(type, j.str());
}

}  // namespace

std::string responseObject(const ResponseParts& p, std::string_view status, std::string_view text) {
  common::JsonWriter j;
  const bool done = status != "in_progress";
  j.beginObject().key("id").value(p.id).key("object").value("response").key("created_at").value(p.created_at);
  j.key("status").value(status).key("model").value(p.model);
  j.key("output").beginArray();
  if (done) outputItem(j, p, "completed", text, true);
  j.endArray();
  j.key("previous_response_id");
  p.previous_response_id.empty() ? j.null() : j.value(p.previous_response_id);
  j.key("incomplete_details");
  if (done && p.incomplete) {
    j.beginObject().key("reason").value("max_output_tokens").endObject();
  } else {
    j.null();
  }
  j.key("usage");
  if (done) {
    j.beginObject().key("input_tokens").value(p.input_tokens).key("output_tokens").value(p.output_tokens);
    j.key("total_tokens").value(p.input_tokens + p.output_tokens).endObject();
  } else {
    j.null();
  }
  j.endObject();
  return j.take();
}

std::string responseOpening(const ResponseParts& p, uint32_t& seq) {
  const std::string pending = responseObject(p, "in_progress", "");
  std::string out = event("response.created", seq, [&](auto& j) { j.key("response").raw(pending); });
  out += event("response.in_progress", seq, [&](auto& j) { j.key("response").raw(pending); });
  out += event("response.output_item.added", seq, [&](auto& j) {
    j.key("output_index").value(0).key("item");
    outputItem(j, p, "in_progress", "", false);
  });
  out += event("response.content_part.added", seq, [&](auto& j) {
    j.key("item_id").value(p.item_id).key("output_index").value(0).key("content_index").value(0);
    j.key("part").beginObject().key("type").value("output_text").key("text").value("");
    j.key("annotations").beginArray().endArray().endObject();
  });
  return out;
}

std::string responseDelta(const ResponseParts& p, std::string_view delta, uint32_t& seq) {
  return event("response.output_text.delta", seq, [&](auto& j) {
    j.key("item_id").value(p.item_id).key("output_index").value(0).key("content_index").value(0);
    j.key("delta").value(delta);
  });
}

std::string responseClosing(const ResponseParts& p, std::string_view text, uint32_t& seq) {
  std::string out = event("response.output_text.done", seq, [&](auto& j) {
    j.key("item_id").value(p.item_id).key("output_index").value(0).key("content_index").value(0);
    j.key("text").value(text);
  });
  out += event("response.content_part.done", seq, [&](auto& j) {
    j.key("item_id").value(p.item_id).key("output_index").value(0).key("content_index").value(0);
    j.key("part").beginObject().key("type").value("output_text").key("text").value(text);
    j.key("annotations").beginArray().endArray().endObject();
  });
  out += event("response.output_item.done", seq, [&](auto& j) {
    j.key("output_index").value(0).key("item");
    outputItem(j, p, "completed", text, true);
  });
  const std::string done = responseObject(p, p.incomplete ? "incomplete" : "completed", text);
  out += event(p.incomplete ? "response.incomplete" : "response.completed", seq,
               [&](auto& j) { j.key("response").raw(done); });
  return out;
}

std::variant<std::string, openai::ApiError> rerank(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (auto e = parseObject(parser, body, root)) return *e;
  std::string_view query, model;
  simdjson::dom::array docs;
  if (root["model"].get(model)) {}
  if (root["query"].get(query)) return invalid("query", "'query' must be a string.");
  if (root["documents"].get(docs)) return invalid("documents", "'documents' must be an array.");
  uint64_t top_n = docs.size();
  if (root["top_n"].get(top_n)) {}
  const auto q = words(query);
  struct Ranked {
    size_t index;
    std::string_view text;
    double score;
  };
  std::vector<Ranked> ranked;
  uint32_t tokens = openai::countTokens(query);
  for (element d : docs) {
    const std::string_view t = documentText(d);
    tokens += openai::countTokens(t);
    ranked.push_back({ranked.size(), t, overlap(q, t)});
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  if (ranked.size() > top_n) ranked.resize(top_n);
  common::JsonWriter j;
  j.beginObject().key("id").value("rerank-sim").key("model").value(model);
  j.key("usage").beginObject().key("total_tokens").value(tokens).endObject();
  j.key("results").beginArray();
  for (const auto& r : ranked) {
    j.beginObject().key("index").value(static_cast<uint64_t>(r.index));
    j.key("document").beginObject().key("text").value(r.text).endObject();
    j.key("relevance_score").value(r.score).endObject();
  }
  j.endArray().endObject();
  return j.take();
}

std::variant<std::string, openai::ApiError> score(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (auto e = parseObject(parser, body, root)) return *e;
  std::string_view a, b, model;
  if (root["model"].get(model)) {}
  if (root["text_1"].get(a) || root["text_2"].get(b)) {
    return invalid("text_1", "'text_1' and 'text_2' must be strings.");
  }
  common::JsonWriter j;
  j.beginObject().key("id").value("score-sim").key("object").value("list").key("model").value(model);
  j.key("data").beginArray().beginObject().key("index").value(0).key("object").value("score");
  j.key("score").value(overlap(words(a), b)).endObject().endArray().endObject();
  return j.take();
}

std::variant<std::string, openai::ApiError> tokenize(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (auto e = parseObject(parser, body, root)) return *e;
  std::string_view prompt;
  if (root["prompt"].get(prompt)) return invalid("prompt", "'prompt' must be a string.");
  const uint32_t n = openai::countTokens(prompt);
  common::JsonWriter j;
  j.beginObject().key("count").value(n).key("max_model_len").value(8192).key("tokens").beginArray();
  for (uint32_t i = 0; i < n; ++i) j.value(static_cast<uint64_t>(1000 + i));
  j.endArray().endObject();
  return j.take();
}

std::variant<std::string, openai::ApiError> detokenize(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (auto e = parseObject(parser, body, root)) return *e;
  simdjson::dom::array tokens;
  if (root["tokens"].get(tokens)) return invalid("tokens", "'tokens' must be an array of token ids.");
  std::string prompt;
  for (size_t i = 0; i < tokens.size(); ++i) prompt += i ? " tok" : "tok";  // one simulator token per word
  common::JsonWriter j;
  j.beginObject().key("prompt").value(prompt).endObject();
  return j.take();
}

std::variant<std::string, openai::ApiError> transcribe(std::string_view content_type, std::string_view body) {
  auto file = openai::multipartField(content_type, body, "file");
  if (!file) {
    return openai::ApiError{400, "Send the audio as a multipart form with a 'file' field.", "invalid_request_error",
                            "file", "missing_required_parameter"};
  }
  common::JsonWriter j;
  j.beginObject().key("text").value(common::strCat("Simulated transcription of ", file->size(), " bytes.")).endObject();
  return j.take();
}

std::optional<std::variant<std::string, openai::ApiError>> passthroughAnswer(std::string_view path,
                                                                            std::string_view content_type,
                                                                            std::string_view body) {
  if (path == "/v1/rerank" || path == "/rerank") return rerank(body);
  if (path == "/v1/score") return score(body);
  if (path == "/tokenize") return tokenize(body);
  if (path == "/detokenize") return detokenize(body);
  if (path == "/v1/audio/transcriptions" || path == "/v1/audio/translations") return transcribe(content_type, body);
  return std::nullopt;
}

}  // namespace spillway::sim
