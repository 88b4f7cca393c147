// Writing complete responses on a client connection: JSON bodies and
// OpenAI-style errors, with the headers every Spillway response carries.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/status.hpp>
#include <string>
#include <string_view>

#include "common/asio_types.h"
#include "openai/openai.h"

namespace spillway::http {

class ClientStream;  // http/client_stream.h

struct ExtraHeaders {
  uint32_t retry_after_seconds = 0;  // adds Retry-After when > 0
  std::string_view backend;          // adds x-spillway-backend when set
  // Complete header lines ("Name: value\r\n"...) the pipeline's stages
  // added (rate-limit headers, drop reason, degradation).
  std::string_view lines;
};

// Writes a whole response; returns true when the connection may serve another
// request (keep_alive and the write succeeded).
common::Awaitable<bool> writeBody(ClientStream& stream,
                                       boost::beast::http::status status, std::string body,
                                       std::string_view content_type, bool keep_alive,
                                       ExtraHeaders extra = {});

// {"error":{...}} with the error's status.
//
// Coroutine rule for this code base: never pass a class-type temporary in a
// co_await expression (build a named local and move it): GCC 12 can destroy
// such temporaries twice. Hence `error` by value, moved in by callers.
common::Awaitable<bool> writeApiError(ClientStream& stream, openai::ApiError error,
                                           bool keep_alive, ExtraHeaders extra = {});

inline constexpr std::string_view kServerName = "spillway";
inline constexpr std::string_view kBackendHeader = "x-spillway-backend";

}  // namespace spillway::http
