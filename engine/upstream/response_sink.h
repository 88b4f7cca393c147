// Where an upstream answer goes. The upstream exchange writes the answer it
// relays into a sink instead of a socket: the client connection today
// (http::ClientSink); a cache fill or a fan-out to coalesced waiters later,
// by wrapping or replacing it.
//
// Contract: calls come in the order sendHead, sendBody*, sendEnd (or one
// sendWhole), all from the request's worker thread; each returns false when
// the receiver is gone (stop relaying). sendBody's bytes are only valid
// during the call. A sink with backpressure completes a send only once the
// receiver took the bytes.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/asio_types.h"

namespace spillway::upstream {

// The parts of an upstream response head that are passed on.
struct ResponseHead {
  int status = 200;
  std::string_view reason;        // "OK"
  std::string_view content_type;  // empty: none
  std::string_view retry_after;
  std::string_view cache_control;
  std::string_view backend;       // becomes x-spillway-backend
  std::optional<uint64_t> length;  // nullopt: the body is streamed (chunked)
  bool event_stream = false;       // text/event-stream
};

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  // A complete answer in one call (head.length == body.size()).
  virtual common::Awaitable<bool> sendWhole(const ResponseHead& head, std::string_view body) = 0;
  virtual common::Awaitable<bool> sendHead(const ResponseHead& head) = 0;
  virtual common::Awaitable<bool> sendBody(std::string_view bytes) = 0;
  // The body ended cleanly.
  virtual common::Awaitable<bool> sendEnd() = 0;
  // The upstream broke after the head went out: the receiver must not take
  // what it got for a complete answer. `sse_error_event` is a ready-made
  // SSE frame for event streams (empty otherwise).
  virtual common::Awaitable<void> abort(std::string_view sse_error_event) = 0;
  // Whether anything was sent yet (after that, no retry is possible).
  virtual bool started() const = 0;
};

}  // namespace spillway::upstream
