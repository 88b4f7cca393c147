#include "cache/replay.h"

#include <simdjson.h>

#include <map>
#include <vector>

#include "common/json_writer.h"

namespace spillway::cache {

namespace {

using simdjson::dom::element;

constexpr const char* kSseType = "text/event-stream";

// Calls f(json) for each "data:" event of an SSE body, [DONE] excluded.
template <typename F>
void forEachEvent(std::string_view sse, F f) {
  size_t pos = 0;
  while (pos < sse.size()) {
    size_t end = sse.find("\n\n", pos);
    if (end == std::string_view::npos) end = sse.size();
    std::string_view event = sse.substr(pos, end - pos);
    pos = end + 2;
    // One data line per event (what every inference server sends).
    const size_t at = event.find("data:");
    if (at == std::string_view::npos) continue;
    std::string_view data = event.substr(at + 5);
    while (!data.empty() && data.front() == ' ') data.remove_prefix(1);
    while (!data.empty() && (data.back() == '\r' || data.back() == '\n')) data.remove_suffix(1);
    if (data == "[DONE]") continue;
    f(data, event);
  }
}

std::string_view str(element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v)) return {};
  return v;
}

int64_t intOr(element e, const char* key, int64_t fallback) {
  int64_t v = fallback;
  if (e[key].get_int64().get(v)) return fallback;
  return v;
}

bool hasUsage(element e) {
  element u;
  return !e["usage"].get(u) && u.is_object();
}

struct ToolCall {
  std::string id, type, name, arguments;
};
struct Choice {
  std::string role, content, finish_reason;
  bool has_content = false;
  std::map<int64_t, ToolCall> tool_calls;
};

std::optional<std::string> sseToJson(openai::Endpoint ep, std::string_view sse) {
  simdjson::dom::parser parser;
  std::string id, model, fingerprint, usage;
  int64_t created = 0;
  std::map<int64_t, Choice> choices;
  bool ok = true, any = false;
  forEachEvent(sse, [&](std::string_view data, std::string_view) {
    element root;
    if (parser.parse(data.data(), data.size(), true).get(root) || !root.is_object()) {
      ok = false;
      return;
    }
    any = true;
    if (id.empty()) id = std::string(str(root, "id"));
    if (model.empty()) model = std::string(str(root, "model"));
    if (fingerprint.empty()) fingerprint = std::string(str(root, "system_fingerprint"));
    if (!created) created = intOr(root, "created", 0);
    if (hasUsage(root)) usage = simdjson::minify(root["usage"].value_unsafe());
    simdjson::dom::array list;
    if (root["choices"].get_array().get(list)) return;
    for (element c : list) {
      const int64_t index = intOr(c, "index", 0);
      Choice& ch = choices[index];
      std::string_view fr;
      if (!c["finish_reason"].get_string().get(fr)) ch.finish_reason = std::string(fr);
      if (ep == openai::Endpoint::kCompletions) {
        ch.content += str(c, "text");
        ch.has_content = true;
        continue;
      }
      element delta;
      if (c["delta"].get(delta) || !delta.is_object()) continue;
      if (auto r = str(delta, "role"); !r.empty()) ch.role = std::string(r);
      std::string_view text;
      if (!delta["content"].get_string().get(text)) {
        ch.content += text;
        ch.has_content = true;
      }
      simdjson::dom::array calls;
      if (!delta["tool_calls"].get_array().get(calls)) {
        for (element tc : calls) {
          const int64_t ti = intOr(tc, "index", 0);
          ToolCall& t = ch.tool_calls[ti];
          if (auto v = str(tc, "id"); !v.empty()) t.id = std::string(v);
          if (auto v = str(tc, "type"); !v.empty()) t.type = std::string(v);
          element fn;
          if (!tc["function"].get(fn) && fn.is_object()) {
            t.name += str(fn, "name");
            t.arguments += str(fn, "arguments");
          }
        }
      }
    }
  });
  if (!ok || !any) return std::nullopt;
  common::JsonWriter j;
  j.beginObject().key("id").value(id);
  j.key("object").value(ep == openai::Endpoint::kCompletions ? "text_completion" : "chat.completion");
  j.key("created").value(created).key("model").value(model);
  if (!fingerprint.empty()) j.key("system_fingerprint").value(fingerprint);
  j.key("choices").beginArray();
  for (const auto& [index, ch] : choices) {
    j.beginObject().key("index").value(index);
    if (ep == openai::Endpoint::kCompletions) {
      j.key("text").value(ch.content);
    } else {
      j.key("message").beginObject().key("role").value(ch.role.empty() ? "assistant" : ch.role);
      j.key("content");
      if (ch.has_content || ch.tool_calls.empty()) {
        j.value(ch.content);
      } else {
        j.null();
      }
      if (!ch.tool_calls.empty()) {
        j.key("tool_calls").beginArray();
        for (const auto& [ti, t] : ch.tool_calls) {
          j.beginObject().key("id").value(t.id).key("type").value(t.type.empty() ? "function" : t.type);
          j.key("function").beginObject().key("name").value(t.name).key("arguments").value(t.arguments).endObject();
          j.endObject();
        }
        j.endArray();
      }
      j.endObject();
    }
    j.key("logprobs").null().key("finish_reason");
    if (ch.finish_reason.empty()) {
      j.null();
    } else {
      j.value(ch.finish_reason);
    }
    j.endObject();
  }
  j.endArray();
  if (!usage.empty()) j.key("usage").raw(usage);
  j.endObject();
  return j.take();
}

std::optional<std::string> jsonToSse(openai::Endpoint ep, std::string_view json, bool include_usage) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(json.data(), json.size(), true).get(root) || !root.is_object()) return std::nullopt;
  simdjson::dom::array list;
  if (root["choices"].get_array().get(list)) return std::nullopt;
  const bool chat = ep == openai::Endpoint::kChatCompletions;
  const int64_t created = intOr(root, "created", 0);
  const std::string_view fingerprint = str(root, "system_fingerprint");
  // Every chunk starts alike.
  auto begin = [&](common::JsonWriter& j) {
    j.beginObject().key("id").value(str(root, "id"));
    j.key("object").value(chat ? "chat.completion.chunk" : "text_completion");
    j.key("created").value(created).key("model").value(str(root, "model"));
    if (!fingerprint.empty()) j.key("system_fingerprint").value(fingerprint);
  };
  std::string out;
  // One chunk with an entry per choice: its index, then what `fill` writes
  // (false: the answer is unreadable).
  auto chunk = [&](auto fill) {
    common::JsonWriter j;
    begin(j);
    j.key("choices").beginArray();
    for (element c : list) {
      j.beginObject().key("index").value(intOr(c, "index", 0));
      if (!fill(j, c)) return false;
      j.endObject();
    }
    j.endArray().endObject();
    out += openai::sseData(j.str());
    return true;
  };
  // The content chunk: every choice's whole message.
  const bool readable = chunk([&](common::JsonWriter& j, element c) {
    if (chat) {
      element msg;
      if (c["message"].get(msg) || !msg.is_object()) return false;
      j.key("delta").beginObject().key("role").value(str(msg, "role").empty() ? "assistant" : str(msg, "role"));
      std::string_view content;
      if (!msg["content"].get_string().get(content)) j.key("content").value(content);
      simdjson::dom::array calls;
      if (!msg["tool_calls"].get_array().get(calls)) {
        j.key("tool_calls").beginArray();
        int64_t ti = 0;
        for (element tc : calls) {
          j.beginObject().key("index").value(ti++).key("id").value(str(tc, "id"));
          j.key("type").value(str(tc, "type").empty() ? "function" : str(tc, "type"));
          element fn;
          if (!tc["function"].get(fn) && fn.is_object()) {
            j.key("function").beginObject().key("name").value(str(fn, "name"));
            j.key("arguments").value(str(fn, "arguments")).endObject();
          }
          j.endObject();
        }
        j.endArray();
      }
      j.endObject();
    } else {
      j.key("text").value(str(c, "text"));
    }
    j.key("logprobs").null().key("finish_reason").null();
    return true;
  });
  if (!readable) return std::nullopt;
  // The finish chunk.
  chunk([&](common::JsonWriter& j, element c) {
    if (chat) {
      j.key("delta").beginObject().endObject();
    } else {
      j.key("text").value("");
    }
    j.key("logprobs").null().key("finish_reason");
    std::string_view fr;
    if (c["finish_reason"].get_string().get(fr)) {
      j.null();
    } else {
      j.value(fr);
    }
    return true;
  });
  if (include_usage) {
    if (!hasUsage(root)) return std::nullopt;
    common::JsonWriter j;
    begin(j);
    j.key("choices").beginArray().endArray();
    j.key("usage").raw(simdjson::minify(root["usage"].value_unsafe())).endObject();
    out += openai::sseData(j.str());
  }
  out += openai::kSseDone;
  return out;
}

// A stored stream without its usage-only chunk (for callers that did not
// ask for usage).
std::string stripUsage(std::string_view sse) {
  simdjson::dom::parser parser;
  std::string out;
  out.reserve(sse.size());
  forEachEvent(sse, [&](std::string_view data, std::string_view event) {
    element root;
    if (!parser.parse(data.data(), data.size(), true).get(root) && hasUsage(root)) {
      simdjson::dom::array list;
      if (!root["choices"].get_array().get(list) && list.size() == 0) return;
    }
    out.append(event).append("\n\n");
  });
  out += openai::kSseDone;
  return out;
}

}  // namespace

Form streamForm(std::string_view sse) {
  Form f = Form::kSse;
  simdjson::dom::parser parser;
  forEachEvent(sse, [&](std::string_view data, std::string_view) {
    element root;
    if (!parser.parse(data.data(), data.size(), true).get(root) && hasUsage(root)) f = Form::kSseUsage;
  });
  return f;
}

std::optional<Replayed> replay(const Entry& e, const Wanted& want) {
  if (!want.stream) {
    if (e.form == Form::kJson) return Replayed{e.body};
    auto j = sseToJson(want.endpoint, e.body);
    if (!j) return std::nullopt;
    return Replayed{std::move(*j)};
  }
  if (e.form == Form::kJson) {
    auto s = jsonToSse(want.endpoint, e.body, want.include_usage);
    if (!s) return std::nullopt;
    return Replayed{std::move(*s), kSseType};
  }
  if (want.include_usage) {
    if (e.form != Form::kSseUsage) return std::nullopt;
    return Replayed{e.body, kSseType};
  }
  if (e.form == Form::kSseUsage) return Replayed{stripUsage(e.body), kSseType};
  return Replayed{e.body, kSseType};
}

}  // namespace spillway::cache
