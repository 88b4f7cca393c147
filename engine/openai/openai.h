// The OpenAI API surface shared by the gateway and the simulator: request
// parsing and validation (simdjson), error bodies, and the SSE frames of a
// streamed completion. One place, so both speak exactly the same dialect.
#pragma once

#include "absl/status/statusor.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace spillway::openai {

// What a request asks for. kResponseById is GET/DELETE (and POST .../cancel)
// on /v1/responses/{id}: no body to parse, routed to the backend that owns
// the id. kPassthrough is any configured extra route (api.passthrough_routes):
// its body is relayed unchanged, only its model is read.
enum class Endpoint { kChatCompletions, kCompletions, kEmbeddings, kResponses, kResponseById, kPassthrough };

// The metric label and config name of an endpoint ("chat_completions",
// "completions", "embeddings", "responses", "responses", "passthrough").
std::string_view endpointName(Endpoint e);
// An endpoint by its config name (pools[].endpoints), if any.
std::optional<Endpoint> endpointByName(std::string_view name);

// The built-in route for a request target ("/v1/chat/completions?x" -> chat),
// if any (passthrough routes are the config's, matched by the gateway).
std::optional<Endpoint> endpointForTarget(std::string_view target);
// The target without its query string.
std::string_view targetPath(std::string_view target);
// The id in "/v1/responses/{id}[/...]" ("" when the target is not one).
std::string_view responseIdOfTarget(std::string_view target);
// The routes api.passthrough_routes has when the config does not say.
const std::vector<std::string>& defaultPassthroughRoutes();

// An error as the OpenAI API reports it: HTTP status plus the JSON fields of
// {"error":{"message","type","param","code"}}. Empty param/code render as null.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
};

// {"error":{...}}
std::string errorBody(const ApiError& e);

// Common errors, so every producer words them the same way.
ApiError invalidJson(std::string detail);
ApiError modelNotFound(std::string_view model);
ApiError serverBusy(std::string message = "The server is busy. Please try again later.");

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;
  bool stream = false;
  bool include_usage = false;            // stream_options.include_usage
  std::optional<uint32_t> max_tokens;    // max_tokens or max_completion_tokens
  std::string user;                      // the end-user id, if sent
  std::string prompt_text;               // all text content, for token counting
  uint32_t message_count = 0;            // chat only
  uint32_t prompt_token_ids = 0;         // completions given as token arrays
  // Sampling that repeats: temperature 0, or a seed (what the cache stores by
  // default; decided here so other requests skip the cache's canonical form).
  // Always true for embeddings.
  bool deterministic = false;
  // Embeddings: the number of inputs (1 for a string or one token array).
  uint32_t input_count = 0;
  // Responses: the stored response this one continues (previous_response_id).
  std::string previous_response_id;
  // Passthrough: the body is a multipart form (its model came from a field).
  bool multipart = false;
  // The caller parses the answer: tools or functions offered, or a
  // response_format other than text. A canned or cut answer would break it
  // (degradation serves it as it came, or sheds it).
  bool structured = false;
};

// Parses and validates a request body. Reuse one parser per connection: it
// keeps its buffers. Not thread-safe.
class RequestParser {
 public:
  RequestParser();
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // `collect_text` false skips copying the prompt text (the gateway only
  // validates; the simulator needs the text for token counts).
  // `content_type` matters only for passthrough routes (a multipart form
  // names its model in a "model" field).
  std::variant<ParsedRequest, ApiError> parse(Endpoint endpoint, std::string_view body, bool collect_text = true,
                                              std::string_view content_type = {});

 private:
  std::variant<ParsedRequest, ApiError> parsePassthrough(std::string_view body, std::string_view content_type);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The simulator's tokenizer: each whitespace-separated word counts
// ceil(length / 4) tokens. Simple, deterministic, and close enough to BPE
// counts for English to make usage figures realistic.
uint32_t countTokens(std::string_view text);

// A cheaper version of a request (degradation level 2): every field as it
// came, except those set here.
struct Rewrite {
  std::string model;                      // replaces "model" when set
  std::optional<uint32_t> max_tokens_cap;  // caps max_tokens / max_completion_tokens (adds max_tokens if absent)
  std::string system_instruction;         // chat: prepended as a system message when set
};
// The body rewritten; an error for a body that is not a JSON object.
absl::StatusOr<std::string> rewriteRequest(std::string_view body, const Rewrite& rw);
// Prompt tokens of a parsed request under the same tokenizer, with a
// per-message overhead of 3 tokens plus 3 for the reply priming (chat).
uint32_t promptTokens(const ParsedRequest& r);

// Server-Sent Events framing: "data: <json>\n\n".
std::string sseData(std::string_view json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
// A typed Responses API event: "event: <type>\ndata: <json>\n\n".
std::string sseEvent(std::string_view type, std::string_view json);
// The event that ends a stream that broke, in the endpoint's dialect: chat
// and completions get a data event with an "error" object; the Responses
// API its typed "error" event. Never a clean end.
std::string streamErrorEvent(Endpoint endpoint, const ApiError& e);

// The value of the multipart form field `name` in `body` (boundary from
// `content_type`), or nullopt when there is none or the form is malformed.
std::optional<std::string_view> multipartField(std::string_view content_type, std::string_view body,
                                               std::string_view name);

}  // namespace spillway::openai
