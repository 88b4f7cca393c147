#include "openai/openai.h"

#include <simdjson.h>

#include "common/strings.h"
#include "common/json_writer.h"

namespace spillway::openai {

namespace {

constexpr std::string_view kResponsesPrefix = "/v1/responses/";

}  // namespace

std::string_view endpointName(Endpoint e) {
  switch (e) {
    case Endpoint::kChatCompletions: return "chat_completions";
    case Endpoint::kCompletions: return "completions";
    case Endpoint::kEmbeddings: return "embeddings";
    case Endpoint::kResponses:
    case Endpoint::kResponseById: return "responses";
    case Endpoint::kPassthrough: return "passthrough";
  }
  return "other";
}

std::optional<Endpoint> endpointByName(std::string_view name) {
  for (Endpoint e : {Endpoint::kChatCompletions, Endpoint::kCompletions, Endpoint::kEmbeddings, Endpoint::kResponses,
                     Endpoint::kPassthrough}) {
    if (endpointName(e) == name) return e;
  }
  return std::nullopt;
}

std::string_view targetPath(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::optional<Endpoint> endpointForTarget(std::string_view target) {
  target = targetPath(target);
  if (target == "/v1/chat/completions") return Endpoint::kChatCompletions;
  if (target == "/v1/completions") return Endpoint::kCompletions;
  if (target == "/v1/embeddings") return Endpoint::kEmbeddings;
  if (target == "/v1/responses") return Endpoint::kResponses;
  if (!responseIdOfTarget(target).empty()) return Endpoint::kResponseById;
  return std::nullopt;
}

std::string_view responseIdOfTarget(std::string_view target) {
  target = targetPath(target);
  if (target.size() <= kResponsesPrefix.size() || target.substr(0, kResponsesPrefix.size()) != kResponsesPrefix) {
    return {};
  }
  std::string_view id = target.substr(kResponsesPrefix.size());
  return id.substr(0, id.find('/'));
}

const std::vector<std::string>& defaultPassthroughRoutes() {
  static const std::vector<std::string> kRoutes = {"/v1/rerank", "/v1/score", "/rerank", "/tokenize", "/detokenize",
                                                   "/v1/audio/transcriptions", "/v1/audio/translations"};
  return kRoutes;
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

constexpr size_t kMaxEmbeddingInputs = 2048;

// Embeddings: input (a string, strings, a token array or token arrays),
// encoding_format, dimensions.
std::optional<ApiError> parseEmbeddings(element root, ParsedRequest& r, std::string* text) {
  r.deterministic = true;  // the same input always gets the same vector
  auto input = root["input"];
  if (input.error()) return missing("input");
  element in = input.value_unsafe();
  auto appendText = [&](std::string_view t) {
    if (!text) return;
    text->append(t);
    text->push_back('\n');
  };
  auto tokenArray = [](element e) {
    if (!e.is_array()) return false;
    simdjson::dom::array ids = e.get_array().value_unsafe();
    for (element id : ids) {
      if (!id.is_int64() && !id.is_uint64()) return false;
    }
    return ids.size() > 0;
  };
  if (in.is_string()) {
    if (in.get_string().value_unsafe().empty()) return invalidValue("input", "'input' must not be an empty string.");
    appendText(in.get_string().value_unsafe());
    r.input_count = 1;
  } else if (in.is_array()) {
    simdjson::dom::array items = in.get_array().value_unsafe();  // a copy: range-for must not bind a temporary
    if (items.size() == 0) return invalidValue("input", "'input' must not be an empty array.");
    if (items.size() > kMaxEmbeddingInputs) {
      return invalidValue("input", common::strCat("'input' may hold at most ", kMaxEmbeddingInputs, " items."));
    }
    if (tokenArray(in)) {
      r.prompt_token_ids = static_cast<uint32_t>(items.size());
      r.input_count = 1;
    } else {
      size_t i = 0;
      for (element e : items) {
        if (e.is_string()) {
          if (e.get_string().value_unsafe().empty()) {
            return invalidValue(common::strCat("input[", i, "]"), common::strCat("'input[", i, "]' must not be empty."));
          }
          appendText(e.get_string().value_unsafe());
        } else if (tokenArray(e)) {
          r.prompt_token_ids += static_cast<uint32_t>(e.get_array().value_unsafe().size());
        } else {
          return invalidType(common::strCat("input[", i, "]"), "a string or an array of token ids");
        }
        ++i;
      }
      r.input_count = static_cast<uint32_t>(i);
    }
  } else {
    return invalidType("input", "a string, an array of strings or an array of token ids");
  }
  if (auto f = root["encoding_format"]; !f.error() && !f.value_unsafe().is_null()) {
    if (!f.value_unsafe().is_string()) return invalidType("encoding_format", "a string");
    const std::string_view v = f.value_unsafe().get_string().value_unsafe();
    if (v != "float" && v != "base64") {
      return invalidValue("encoding_format", common::strCat("Invalid value for 'encoding_format': '", v,
                                                            "'. Supported values are: 'float' and 'base64'."));
    }
  }
  if (auto d = root["dimensions"]; !d.error() && !d.value_unsafe().is_null()) {
    element v = d.value_unsafe();
    if (!v.is_int64() && !v.is_uint64()) return invalidType("dimensions", "an integer");
    if (!v.is_uint64() || v.get_uint64().value_unsafe() < 1) return invalidValue("dimensions", "'dimensions' must be at least 1.");
  }
  return std::nullopt;
}

// The Responses API: input (a string or a list of items), instructions,
// max_output_tokens, previous_response_id.
std::optional<ApiError> parseResponses(element root, ParsedRequest& r, std::string* text) {
  r.deterministic = false;  // stateful on its server: never answered from the cache
  if (auto input = root["input"]; !input.error() && !input.value_unsafe().is_null()) {
    element in = input.value_unsafe();
    if (in.is_string()) {
      if (text) text->append(in.get_string().value_unsafe());
    } else if (in.is_array()) {
      size_t i = 0;
      simdjson::dom::array items = in.get_array().value_unsafe();  // a copy: range-for must not bind a temporary
      for (element item : items) {
        auto p = [&] { return common::strCat("input[", i, "]"); };
        if (!item.is_object()) return invalidType(p(), "an object");
        if (auto content = item["content"]; !content.error()) {
          if (auto e = appendContent(content.value_unsafe(), [&] { return p() + ".content"; }, text)) return e;
        }
        ++r.message_count;
        ++i;
      }
    } else {
      return invalidType("input", "a string or an array of input items");
    }
  }
  if (auto ins = root["instructions"]; !ins.error() && !ins.value_unsafe().is_null()) {
    if (!ins.value_unsafe().is_string()) return invalidType("instructions", "a string");
    if (text) text->append(ins.value_unsafe().get_string().value_unsafe());
  }
  if (auto mt = root["max_output_tokens"]; !mt.error() && !mt.value_unsafe().is_null()) {
    element v = mt.value_unsafe();
    if (!v.is_int64() && !v.is_uint64()) return invalidType("max_output_tokens", "an integer");
    const int64_t n = v.is_int64() ? v.get_int64().value_unsafe() : INT64_MAX;
    if (n < 1) return invalidValue("max_output_tokens", "'max_output_tokens' must be at least 1.");
    r.max_tokens = static_cast<uint32_t>(std::min<int64_t>(n, 1 << 30));
  }
  if (auto prev = root["previous_response_id"]; !prev.error() && !prev.value_unsafe().is_null()) {
    if (!prev.value_unsafe().is_string()) return invalidType("previous_response_id", "a string");
    r.previous_response_id = std::string(prev.value_unsafe().get_string().value_unsafe());
  }
  return std::nullopt;
}

}  // namespace

struct RequestParser::Impl {
  simdjson::dom::parser parser;
};

// A passthrough body is relayed as it is: only the model (a JSON "model", or
// a multipart "model" field) and "stream" are read. A body that is neither
// names no model (the route stage then picks the only pool, or asks for one).
std::variant<ParsedRequest, ApiError> RequestParser::parsePassthrough(std::string_view body,
                                                                      std::string_view content_type) {
  ParsedRequest r;
  r.endpoint = Endpoint::kPassthrough;
  if (content_type.find("multipart/form-data") != std::string_view::npos) {
    r.multipart = true;
    auto model = multipartField(content_type, body, "model");
    if (model) r.model = std::string(*model);
    auto stream = multipartField(content_type, body, "stream");
    r.stream = stream && *stream == "true";
    return r;
  }
  element root;
  if (body.empty() || impl_->parser.parse(body.data(), body.size(), true).get(root) || !root.is_object()) return r;
  if (auto m = root["model"]; !m.error() && !m.value_unsafe().is_null()) {
    if (!m.value_unsafe().is_string()) return invalidType("model", "a string");
    r.model = std::string(m.value_unsafe().get_string().value_unsafe());
  }
  if (auto st = root["stream"]; !st.error() && st.value_unsafe().is_bool()) r.stream = st.value_unsafe().get_bool().value_unsafe();
  return r;
}

RequestParser::RequestParser() : impl_(std::make_unique<Impl>()) {}
RequestParser::~RequestParser() = default;

std::variant<ParsedRequest, ApiError> RequestParser::parse(Endpoint endpoint, std::string_view body,
                                                          bool collect_text, std::string_view content_type) {
  ParsedRequest r;
  r.endpoint = endpoint;
  if (endpoint == Endpoint::kResponseById) return r;  // no body; routed by the id
  if (endpoint == Endpoint::kPassthrough) return parsePassthrough(body, content_type);
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
  for (const char* name : {"tools", "functions"}) {
    auto t = root[name];
    if (!t.error() && t.value_unsafe().is_array() && t.value_unsafe().get_array().value_unsafe().size() > 0) {
      r.structured = true;
    }
  }
  if (auto rf = root["response_format"]; !rf.error() && rf.value_unsafe().is_object()) {
    auto type = rf.value_unsafe()["type"];
    std::string_view t;
    if (!type.error() && !type.value_unsafe().get_string().get(t) && t != "text") r.structured = true;
  }
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    auto mt = root[name];
    if (mt.error() || mt.value_unsafe().is_null()) continue;
    element v = mt.value_unsafe();
    if (!v.is_int64() && !v.is_uint64()) return invalidType(name, "an integer");
    int64_t n = v.is_int64() ? v.get_int64().value_unsafe() : INT64_MAX;
    if (n < 1) return invalidValue(name, common::strCat("'", name, "' must be at least 1."));
    r.max_tokens = static_cast<uint32_t>(std::min<int64_t>(n, 1 << 30));
  }

  if (endpoint == Endpoint::kEmbeddings) {
    if (auto e = parseEmbeddings(root, r, text)) return *e;
    return r;
  }
  if (endpoint == Endpoint::kResponses) {
    if (auto e = parseResponses(root, r, text)) return *e;
    return r;
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

std::string sseEvent(std::string_view type, std::string_view json) {
  return common::strCat("event: ", type, "\ndata: ", json, "\n\n");
}

std::string streamErrorEvent(Endpoint endpoint, const ApiError& e) {
  if (endpoint != Endpoint::kResponses) return sseData(errorBody(e));
  common::JsonWriter j;
  j.beginObject().key("type").value("error").key("code");
  e.code.empty() ? j.null() : j.value(e.code);
  j.key("message").value(e.message).key("param");
  e.param.empty() ? j.null() : j.value(e.param);
  j.endObject();
  return sseEvent("error", j.str());
}

std::optional<std::string_view> multipartField(std::string_view content_type, std::string_view body,
                                               std::string_view name) {
  const size_t b = content_type.find("boundary=");
  if (b == std::string_view::npos) return std::nullopt;
  std::string_view boundary = content_type.substr(b + 9);
  boundary = boundary.substr(0, boundary.find(';'));
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  if (boundary.empty() || boundary.size() > 70) return std::nullopt;
  const std::string delimiter = common::strCat("--", boundary);
  const std::string wanted = common::strCat("name=\"", name, "\"");
  for (size_t at = body.find(delimiter); at != std::string_view::npos;) {
    const size_t head_start = at + delimiter.size();
    const size_t head_end = body.find("\r\n\r\n", head_start);
    if (head_end == std::string_view::npos) return std::nullopt;
    const size_t next = body.find(delimiter, head_end + 4);
    if (next == std::string_view::npos) return std::nullopt;
    const std::string_view head = body.substr(head_start, head_end - head_start);
    // The part's Content-Disposition names it (name="model", not filename=).
    const size_t n = head.find(wanted);
    if (n != std::string_view::npos && (n == 0 || head[n - 1] == ' ' || head[n - 1] == ';')) {
      std::string_view value = body.substr(head_end + 4, next - head_end - 4);
      if (value.size() >= 2 && value.substr(value.size() - 2) == "\r\n") value.remove_suffix(2);
      return value;
    }
    at = next;
  }
  return std::nullopt;
}

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
