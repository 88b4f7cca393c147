// The simulator's answers for the endpoints beyond chat: embeddings
// (deterministic unit vectors from each input's text), the Responses API's
// objects and stream events, rerank and score (word overlap), tokenize, and
// audio transcription. Pure functions of the request: the server
// (sim_server.cc) adds the timing, the slots and the stored responses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "openai/openai.h"

namespace spillway::sim {

struct Embedded {
  std::string body;       // the OpenAI embeddings answer
  uint32_t inputs = 0;    // inputs embedded
  uint32_t tokens = 0;    // their tokens (usage.prompt_tokens)
};
// `dimensions`: the server's vector length (a request's "dimensions" may
// shorten it). The same text always gets the same vector.
std::variant<Embedded, openai::ApiError> embeddings(std::string_view body, uint32_t dimensions);
// The vector for `text` (unit length), as embeddings() computes it.
std::vector<float> embeddingOf(std::string_view text, uint32_t dimensions);

// A Responses API response object.
struct ResponseParts {
  std::string id;
  std::string item_id;
  std::string model;
  int64_t created_at = 0;
  std::string previous_response_id;
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;
  bool incomplete = false;  // stopped by max_output_tokens
};
// status "in_progress" (no output yet) or the finished object with `text`.
std::string responseObject(const ResponseParts& p, std::string_view status, std::string_view text);
// The stream's events before the first delta (created, in_progress, item
// added, content part added), one delta, and those after the last delta
// (text done, part done, item done, completed). `seq` counts events.
std::string responseOpening(const ResponseParts& p, uint32_t& seq);
std::string responseDelta(const ResponseParts& p, std::string_view delta, uint32_t& seq);
std::string responseClosing(const ResponseParts& p, std::string_view text, uint32_t& seq);

// POST /v1/rerank, /rerank: documents ranked by the share of the query's
// words they contain. POST /v1/score: text_1 against text_2.
std::variant<std::string, openai::ApiError> rerank(std::string_view body);
std::variant<std::string, openai::ApiError> score(std::string_view body);
// POST /tokenize: {"count","max_model_len","tokens"}; POST /detokenize:
// {"prompt"}.
std::variant<std::string, openai::ApiError> tokenize(std::string_view body);
std::variant<std::string, openai::ApiError> detokenize(std::string_view body);
// POST /v1/audio/transcriptions|translations (multipart): {"text"} naming
// the file's size.
std::variant<std::string, openai::ApiError> transcribe(std::string_view content_type, std::string_view body);

// The answer for one of the routes above by its path (the gateway's default
// passthrough routes), or nullopt for a path the simulator does not serve.
std::optional<std::variant<std::string, openai::ApiError>> passthroughAnswer(std::string_view path,
                                                                            std::string_view content_type,
                                                                            std::string_view body);

}  // namespace spillway::sim
