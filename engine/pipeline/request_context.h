// One proxied request on its way through the pipeline: what was parsed,
// who sent it, where it is going, and how it ended. Created by the gateway
// for each completion request, filled in by the stages in order, read by
// the completion observers. Lives on the request's worker thread only.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio_types.h"
#include "openai/openai.h"
#include "pipeline/client_channel.h"
#include "pipeline/priority.h"
#include "pipeline/trace_context.h"
#include "upstream/backend.h"

// Policies' own per-request records, opaque here: the contracts include no
// policy (docs/ARCHITECTURE.md, "Module graph").
namespace spillway::admission {
struct TokenCharge;
}
namespace spillway::cache {
struct CacheState;
}

namespace spillway::pipeline {

struct PoolRoute;
struct RouteTable;

// Who sent the request.
struct Caller {
  std::string api_key;      // the bearer token, if any (never logged)
  std::string client_ip;    // filled on demand (affinity by address)
  std::string session_key;  // x-session-id, if sent
  // The subject common name of the client's verified TLS certificate
  // (mutual TLS; owned by the connection), empty without one.
  std::string_view client_cert_cn;
  Priority priority = Priority::kStandard;
  bool priority_from_header = false;  // x-spillway-priority was sent
  // Who is charged and treated fairly: the API key's tenant name (set by
  // authenticate), else the client address (set when first needed).
  std::string tenant;
  bool key_known = false;  // the bearer token matched a configured key
  const v1::RateLimit* key_limits = nullptr;  // that key's own limits (owned by the routing snapshot)
};

struct RequestContext {
  using Clock = std::chrono::steady_clock;

  // --- the request -------------------------------------------------------
  const boost::beast::http::fields* headers = nullptr;
  std::string_view method = "POST";  // GET and DELETE reach /v1/responses/{id}
  std::string_view target;           // the request target, query included
  const common::TcpStream::socket_type* client = nullptr;  // for the client's address, asked only when needed
  // The connection's peer address once asked (owned by the connection, so a
  // keep-alive connection asks the kernel once, not once a request).
  std::string* client_peer = nullptr;
  ClientChannel* channel = nullptr;  // for a stage that writes its answer itself (stage.h)
  std::string_view body;  // owned by the front server's request object
  uint8_t route = 0;      // index into the gateway's route names
  openai::ParsedRequest parsed;  // model, stream, max_tokens, user
  uint32_t prompt_tokens_estimate = 0;  // body bytes / 4: a cheap upper-ish bound
  // Chained hashes of the prompt prefix in fixed-size blocks (only when the
  // pool's policy wants them).
  std::vector<uint64_t> prefix_blocks;
  Caller caller;
  TraceContext trace;  // W3C trace context: the client's trace continued, or a new one
  Clock::time_point start;
  // The latest the request may still be waiting for a backend slot (the
  // class's queue timeout, shortened by x-spillway-timeout-ms). The
  // objective decides earlier whether it waits at all (admission/queue).
  Clock::time_point deadline = Clock::time_point::max();
  // The latency objective (time to first token for a stream, to the whole
  // answer otherwise): the class's, or less when the client asked for less
  // (x-spillway-slo-ttft-ms). Zero: none.
  std::chrono::milliseconds objective{0};

  // --- routing -----------------------------------------------------------
  const RouteTable* routes = nullptr;
  const PoolRoute* pool = nullptr;
  // GPU placement: the backends this request may use (empty: any of the
  // pool's); owned by the routing snapshot (gpu/placement).
  std::span<const upstream::Backend* const> placement;
  // A backend this request must go to (the Responses API's owner of a
  // stored response); placement then points at it.
  const upstream::Backend* pin = nullptr;
  // The response id of GET/DELETE /v1/responses/{id} (into the target).
  std::string_view response_id;
  uint64_t hash_key = 0;  // affinity key for consistent_hash
  bool has_hash_key = false;
  upstream::BackendPtr backend;                  // the backend of the current / last attempt
  std::vector<const upstream::Backend*> tried;  // backends that failed this request
  uint32_t attempts = 0;
  uint32_t retries = 0;  // attempts on another backend
  uint32_t requeues = 0;  // times a backend's 429/503 put it back in the queue
  Clock::time_point attempt_start;  // when the current attempt got its backend slot
  int64_t in_flight_at_dispatch = 0;  // the backend's in-flight then, this request included
  Clock::duration queue_wait{};       // total time waiting in the gateway queue
  // Degradation level applied (0 none); a rewritten request body when the
  // level changed it (max_tokens cap, brief instruction, fallback model).
  uint8_t degraded = 0;
  std::string rewritten_body;

  // --- policies' per-request records (set by their stages; null: none) --
  std::shared_ptr<admission::TokenCharge> token_charge;  // rate-limit buckets charged, corrected at the end (admission/gcra.h)
  std::shared_ptr<cache::CacheState> cache;              // a cacheable request's key and flight (cache/cache_state.h)

  // --- the response --------------------------------------------------------
  std::string response_headers;  // complete lines stages add ("Set-Cookie: ...\r\n")
  std::optional<openai::ApiError> error;  // set by a stage that answers itself
  uint32_t retry_after_seconds = 0;       // with `error`
  DropReason drop = DropReason::kNone;  // with `error`, when admission shed it
  // A whole answer a stage gives instead of the upstream's (degradation
  // level 1): status 200, this JSON or SSE body.
  std::optional<std::string> answer_body;
  std::string answer_content_type;
  // A stage wrote the answer itself through `channel` (status in `status`);
  // keep_connection false when the connection must close after it.
  bool answered_in_place = false;
  bool keep_connection = true;

  // --- the outcome -------------------------------------------------------
  int status = 0;  // as counted: 499 client gone, 502 broken mid-body
  std::optional<Clock::time_point> first_byte;
  // The first generated token when a sink can tell it from the first byte
  // (a Responses stream's first output delta); time to first token uses it.
  std::optional<Clock::time_point> first_token;
  uint32_t output_tokens = 0;
  // Output tokens as the answer's own usage reported them (a Responses
  // stream's response.completed), preferred to the count of data events.
  std::optional<uint32_t> reported_output_tokens;
  // A sink of the chain (stage.h) cut the answer short for the caller's
  // token budget: counted as turned away by the limits (429,
  // rate_limited), and the connection closes.
  bool cut_by_sink = false;
};

}  // namespace spillway::pipeline
