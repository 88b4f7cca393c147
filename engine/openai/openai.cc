#include "openai/openai.h"

#include <simdjson.h>

#include "common/strings.h"
#include "common/json_writer.h"

namespace spillway::openai {

std::optional<Endpoint> endpointForTarget(std::string_view target) {
  auto q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  if (target == "/v1/chat/completions") return Endpoint::kChatCompletions;
  if (target == "/v1/completions") return Endpoint::kCompletions;
  return std::nullopt;
}

std::string errorBody(const ApiError& e) {
  common::JsonWriter w;
  w.beginObject().key("error").beginObject();
  w.key("message").value(e.message);
  w.key("type").value(e.type);
  w.key("param");
  e.param.empty() ? w.null() : w.value(e.param);
  w.key("code");
  e.code.empty() ? w.null() : w.value(e.code);
  w.endObject().endObject();
  return w.take();
}

ApiError invalidJson(std::string detail) {
  return {400,
          common::strCat("We could not parse the JSON body of your request: ", detail,
                       ". Send a JSON object with Content-Type: application/json."),
          "invalid_request_error", "", "invalid_json"};
}

ApiError modelNotFound(std::string_view model) {
  return {404,
          common::strCat("The model `", model, "` does not exist or you do not have access to it."),
          "invalid_request_error", "model", "model_not_found"};
}

ApiError serverBusy(std::string message) {
  return {503, std::move(message), "server_error", "", "server_busy"};
}

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

ApiError missing(std::string_view param) {
  return {400, common::strCat("Missing required parameter: '", param, "'."), "invalid_request_error",
          std::string(param), "missing_required_parameter"};
}

ApiError invalidType(std::string_view param, std::string_view expected) {
  return {400, common::strCat("Invalid type for '", param, "': expected ", expected, "."),
          "invalid_request_error", std::string(param), "invalid_type"};
}

ApiError invalidValue(std::string_view param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::string(param), "invalid_value"};
}

// Appends the text of a message "content": a string, or an array of parts
// whose "text" fields count. Returns an error for other shapes.
// `param` is the field's path, built only when there is an error to report.
// Text goes to `out` unless it is null (validation only).
template <typename ParamFn>
std::optional<ApiError> appendContent(element content, ParamFn param, std::string* out) {
  auto append = [out](std::string_view t) {
    if (!out) return;
    out->append(t);
    out->push_back('\n');
  };
  switch (content.type()) {
    case element_type::STRING:
      append(content.get_string().value_unsafe());
      return std::nullopt;
    case element_type::NULL_VALUE:
      return std::nullopt;
    case element_type::ARRAY: {
      size_t i = 0;
      simdjson::dom::array parts = content.get_array().value_unsafe();  // a copy: range-for must not bind a temporary
      for (element part : parts) {
        auto pp = [&] { return common::strCat(param(), "[", i, "]"); };
        if (!part.is_object()) return invalidType(pp(), "an object");
        auto text = part["text"];
        if (!text.error()) {
          if (!text.value_unsafe().is_string()) return invalidType(pp() + ".text", "a string");
          append(text.value_unsafe().get_string().value_unsafe());
        }
        ++i;
      }
      return std::nullopt;
    }
    default:
      return invalidType(param(), "a string or an array of content parts");
  }
}

}  // namespace

struct RequestParser::Impl {
  simdjson::dom::parser parser;
};

RequestParser::RequestParser() : impl_(std::make_unique<Impl>()) {}
RequestParser::~RequestParser() = default;

std::variant<ParsedRequest, ApiError> RequestParser::parse(Endpoint endpoint, std::string_view body,
                                                          bool collect_text) {
  ParsedRequest r;
  r.endpoint = endpoint;
  std::string* text = collect_text ? &r.prompt_text : nullptr;
  element root;
  auto err = impl_->parser.parse(body.data(), body.size(), true).get(root);
  if (err) return invalidJson(simdjson::error_message(err));
  if (!root.is_object()) return invalidJson("the body must be a JSON object");

  auto model = root["model"];
  if (model.error()) return missing("model");
  if (!model.value_unsafe().is_string()) return invalidType("model", "a string");
  r.model = std::string(model.value_unsafe().get_string().value_unsafe());
  if (r.model.empty()) return invalidValue("model", "'model' must not be empty.");

  auto stream = root["stream"];
  if (!stream.error() && !stream.value_unsafe().is_null()) {
    if (!stream.value_unsafe().is_bool()) return invalidType("stream", "a boolean");
    r.stream = stream.value_unsafe().get_bool().value_unsafe();
  }
  auto so = root["stream_options"];
  if (!so.error() && !so.value_unsafe().is_null()) {
    if (!r.stream) {
      return invalidValue("stream_options",
                          "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    }
    if (!so.value_unsafe().is_object()) return invalidType("stream_options", "an object");
    auto iu = so.value_unsafe()["include_usage"];
    if (!iu.error() && !iu.value_unsafe().is_null()) {
      if (!iu.value_unsafe().is_bool()) return invalidType("stream_options.include_usage", "a boolean");
      r.include_usage = iu.value_unsafe().get_bool().value_unsafe();
    }
  }
  auto user = root["user"];
  if (!user.error() && !user.value_unsafe().is_null()) {
    if (!user.value_unsafe().is_string()) return invalidType("user", "a string");
    r.user = std::string(user.value_unsafe().get_string().value_unsafe());
  }
  if (auto t = root["temperature"]; !t.error()) {
    double v = 1;
    if (!t.value_unsafe().get_double().get(v) && v == 0) r.deterministic = true;
  }
  if (auto seed = root["seed"]; !seed.error() && !seed.value_unsafe().is_null()) r.deterministic = true;
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    auto mt = root[name];
    if (mt.error() || mt.value_unsafe().is_null()) continue;
    element v = mt.value_unsafe();
    if (!v.is_int64() && !v.is_uint64()) return invalidType(name, "an integer");
    int64_t n = v.is_int64() ? v.get_int64().value_unsafe() : INT64_MAX;
    if (n < 1) return invalidValue(name, common::strCat("'", name, "' must be at least 1."));
    r.max_tokens = static_cast<uint32_t>(std::min<int64_t>(n, 1 << 30));
  }

  if (endpoint == Endpoint::kChatCompletions) {
    auto msgs = root["messages"];
    if (msgs.error()) return missing("messages");
    if (!msgs.value_unsafe().is_array()) return invalidType("messages", "an array");
    size_t i = 0;
    simdjson::dom::array list = msgs.value_unsafe().get_array().value_unsafe();  // a copy: range-for must not bind a temporary
    for (element m : list) {
      // Paths are built only for errors: the success path allocates nothing here.
      auto p = [&] { return common::strCat("messages[", i, "]"); };
      if (!m.is_object()) return invalidType(p(), "an object");
      auto role = m["role"];
      if (role.error()) return missing(p() + ".role");
      if (!role.value_unsafe().is_string()) return invalidType(p() + ".role", "a string");
      std::string_view rv = role.value_unsafe().get_string().value_unsafe();
      if (rv != "system" && rv != "user" && rv != "assistant" && rv != "tool" &&
          rv != "developer" && rv != "function") {
        return invalidValue(p() + ".role",
                            common::strCat("Invalid value for '", p(), ".role': '", rv,
                                         "'. Supported values are: 'system', 'developer', 'user', "
                                         "'assistant', 'tool' and 'function'."));
      }
      auto content = m["content"];
      if (content.error()) {
        if (rv != "assistant") return missing(p() + ".content");
      } else if (auto e = appendContent(content.value_unsafe(), [&] { return p() + ".content"; }, text)) {
        return *e;
      }
      ++i;
    }
    if (i == 0) return invalidValue("messages", "'messages' must contain at least one message.");
    r.message_count = static_cast<uint32_t>(i);
  } else {
    auto prompt = root["prompt"];
    if (prompt.error()) return missing("prompt");
    element p = prompt.value_unsafe();
    if (p.is_string()) {
      if (text) *text = std::string(p.get_string().value_unsafe());
    } else if (p.is_array()) {
      size_t i = 0;
      simdjson::dom::array items = p.get_array().value_unsafe();  // a copy: range-for must not bind a temporary
      for (element e : items) {
        if (e.is_string()) {
          if (text) {
            text->append(e.get_string().value_unsafe());
            text->push_back('\n');
          }
        } else if (e.is_int64() || e.is_uint64()) {
          ++r.prompt_token_ids;
        } else if (e.is_array()) {
          simdjson::dom::array ids = e.get_array().value_unsafe();  // a copy: range-for must not bind a temporary
          r.prompt_token_ids += static_cast<uint32_t>(ids.size());
        } else {
          return invalidType(common::strCat("prompt[", i, "]"), "a string or token ids");
        }
        ++i;
      }
    } else {
      return invalidType("prompt", "a string or an array");
    }
  }
  return r;
}

uint32_t countTokens(std::string_view text) {
  uint32_t tokens = 0;
  size_t word = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      tokens += static_cast<uint32_t>((word + 3) / 4);
      word = 0;
    } else {
      ++word;
    }
  }
  return tokens + static_cast<uint32_t>((word + 3) / 4);
}

uint32_t promptTokens(const ParsedRequest& r) {
  uint32_t n = countTokens(r.prompt_text) + r.prompt_token_ids;
  if (r.endpoint == Endpoint::kChatCompletions) n += 3 * r.message_count + 3;
  return n;
}

std::string sseData(std::string_view json) { return common::strCat("data: ", json, "\n\n"); }

}  // namespace spillway::openai

namespace spillway::openai {

absl::StatusOr<std::string> rewriteRequest(std::string_view body, const Rewrite& rw) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) {
    return absl::InvalidArgumentError("the body is not a JSON object");
  }
  common::JsonWriter j;
  j.beginObject();
  bool capped = false;
  simdjson::dom::object fields = root.get_object().value_unsafe();  // a named copy: range-for must not bind a temporary
  for (auto field : fields) {
    const std::string_view key = field.key;
    if (key == "model" && !rw.model.empty()) {
      j.key(key).value(rw.model);
    } else if ((key == "max_tokens" || key == "max_completion_tokens") && rw.max_tokens_cap) {
      uint64_t v = 0;
      if (field.value.get_uint64().get(v)) v = *rw.max_tokens_cap;
      j.key(key).value(static_cast<uint64_t>(std::min<uint64_t>(v, *rw.max_tokens_cap)));
      capped = true;
    } else if (key == "messages" && !rw.system_instruction.empty() && field.value.is_array()) {
      j.key(key).beginArray();
      j.beginObject().key("role").value("system").key("content").value(rw.system_instruction).endObject();
      simdjson::dom::array messages = field.value.get_array().value_unsafe();
      for (auto m : messages) j.raw(simdjson::minify(m));
      j.endArray();
    } else {
      j.key(key).raw(simdjson::minify(field.value));
    }
  }
  if (rw.max_tokens_cap && !capped) j.key("max_tokens").value(static_cast<uint64_t>(*rw.max_tokens_cap));
  j.endObject();
  return j.take();
}

}  // namespace spillway::openai
