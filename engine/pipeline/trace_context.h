// W3C Trace Context (https://www.w3.org/TR/trace-context/): a request's
// trace id comes from the client's `traceparent` when it sends a valid one,
// else it is started here; the gateway is a span of its own (a new span id),
// which is what the backend sees as its parent. `tracestate` is passed on
// unchanged. The trace id is returned to the client (x-spillway-trace-id)
// and written in the access log and in a broken stream's error event.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spillway::pipeline {

struct TraceContext {
  std::string trace_id;    // 32 lower-case hex digits, not all zero
  std::string span_id;     // this gateway's span: 16 hex digits
  std::string parent_id;   // the client's span ("" when the trace started here)
  std::string flags = "01";  // trace-flags as sent (sampled when started here)
  std::string tracestate;    // as received

  // "traceparent: 00-<trace>-<span>-<flags>\r\n" (and tracestate) for the
  // request to the backend.
  std::string upstreamHeaders() const;
};

// The client's traceparent, if it is valid (version 00 or a later one read
// as 00; ids not all zero; hex lower-case).
std::optional<TraceContext> parseTraceparent(std::string_view traceparent);

// A context for this request: continued from `traceparent` when valid, else
// a new trace; a new span id either way.
TraceContext traceFor(std::string_view traceparent, std::string_view tracestate);

}  // namespace spillway::pipeline
