// One attempt at an upstream exchange: send the request on a connection,
// read the answer, and relay it into a ResponseSink — or hand it back
// unsent when it is a refusal worth retrying elsewhere.
//
// Threading: runs on the request's worker thread, like the connection.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "common/asio_types.h"
#include "openai/openai.h"
#include "upstream/backend.h"
#include "upstream/connection_pool.h"
#include "upstream/response_sink.h"

namespace spillway::upstream {

enum class Exchange {
  kDone,                  // relayed in full
  kRetryable,             // failed before any response byte on a reused connection: same backend, new connection
  kFailedBeforeResponse,  // nothing sent; `error` says why (502 broken, 504 timeout)
  kRefused,               // the backend answered 429 or 5xx; nothing sent, the answer is in `held_*`
  kClientGone,            // the sink stopped taking bytes
  kAbortedMidBody,        // the upstream failed after the head went out
};

struct ExchangeResult {
  Exchange outcome = Exchange::kDone;
  openai::ApiError error;  // kFailedBeforeResponse
  int status = 0;          // the upstream's status (relayed or held)
  bool upstream_reusable = false;
  bool saw_first_byte = false;
  std::chrono::steady_clock::time_point first_byte;
  // Output tokens seen: usage.completion_tokens of a JSON answer, or the
  // number of SSE data events of a stream (one token each for the
  // simulators and for vLLM with default settings). 0 when unknown.
  uint32_t output_tokens = 0;
  // kRefused: the answer as the backend gave it, to relay if no other
  // backend takes the request.
  std::string held_body;
  std::string held_content_type;
  std::string held_retry_after;
};

struct ExchangeRequest {
  std::string_view method;
  std::string_view target;
  std::string_view accept;
  std::string_view body;
  std::string_view content_type;  // the client's ("" : application/json)
  // The dialect of the error event that ends a stream that broke.
  openai::Endpoint endpoint = openai::Endpoint::kChatCompletions;
  // Whether 429 and 5xx answers come back as kRefused instead of being relayed.
  bool hold_refusals = false;
  // Retry-After (seconds, as text) added to a relayed 429/503 that has none.
  std::string_view busy_retry_after;
  // Complete header lines added to the request ("traceparent: ...\r\n").
  std::string_view extra_headers;
  // Named in the error event of a stream that breaks ("" : none).
  std::string_view trace_id;
};

// Answers up to this size (with a Content-Length) are read whole and sent in
// one write; larger ones and streams are relayed buffer by buffer.
inline constexpr uint64_t kWholeBodyBytes = 64 * 1024;

// Every argument must outlive the returned awaitable (co_await it at once).
common::Awaitable<ExchangeResult> exchange(Connection& conn, const Backend& backend, const ExchangeRequest& req,
                                           bool reused, ResponseSink& sink);

// SSE data events in a relayed buffer, less the closing [DONE]: a stream's
// tokens (one per event for the simulators and vLLM's defaults). Frames
// split across buffers are missed or double counted rarely.
uint32_t countDataEvents(std::string_view bytes);

// completion_tokens (output_tokens for the Responses API) of a JSON
// answer's "usage", or 0.
uint32_t usageCompletionTokens(std::string_view json);

}  // namespace spillway::upstream
