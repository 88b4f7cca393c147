// The OpenAI request parser and validator, for every endpoint it accepts
// (chat, completions, embeddings, responses and its by-id routes,
// passthrough with a JSON body or a multipart form), plus what the
// gateway does with a parsed request: token estimates, the degradation
// rewrite, the multipart field lookup.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "openai/openai.h"

namespace oa = spillway::openai;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const oa::Endpoint kEndpoints[] = {oa::Endpoint::kChatCompletions, oa::Endpoint::kCompletions,
                                             oa::Endpoint::kEmbeddings,      oa::Endpoint::kResponses,
                                             oa::Endpoint::kResponseById,    oa::Endpoint::kPassthrough};
  const oa::Endpoint endpoint = kEndpoints[data[0] % 6];
  // Passthrough bodies come as JSON or as a multipart form.
  const std::string_view content_type =
      data[1] % 2 ? "multipart/form-data; boundary=XyZ" : "application/json";
  const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  static oa::RequestParser parser;
  for (bool collect : {false, true}) {
    auto parsed = parser.parse(endpoint, body, collect, content_type);
    if (auto* r = std::get_if<oa::ParsedRequest>(&parsed)) {
      (void)oa::promptTokens(*r);
    } else {
      (void)oa::errorBody(std::get<oa::ApiError>(parsed));
    }
  }
  (void)oa::countTokens(body);
  (void)oa::multipartField(content_type, body, "model");
  oa::Rewrite rw;
  rw.model = "fallback";
  rw.max_tokens_cap = 16;
  rw.system_instruction = "Be brief.";
  if (auto rewritten = oa::rewriteRequest(body, rw); rewritten.ok()) {
    // A rewritten request is still a request the parser takes.
    auto again = parser.parse(endpoint == oa::Endpoint::kPassthrough ? oa::Endpoint::kChatCompletions : endpoint,
                              *rewritten, false);
    (void)again;
  }
  return 0;
}
