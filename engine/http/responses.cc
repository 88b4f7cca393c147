#include "http/responses.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <charconv>

#include "http/client_stream.h"

namespace spillway::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

common::Awaitable<bool> writeBody(ClientStream& stream, bhttp::status status,
                               std::string body, std::string_view content_type, bool keep_alive,
                               ExtraHeaders extra) {
  // The head formatted by hand and written with the body in one gather
  // write, as the proxied path does (Beast's serializer cost more than the
  // rest of a cache hit). Every value is ours or a complete line a stage
  // built ("Name: value\r\n").
  std::string head;
  head.reserve(192 + extra.lines.size());
  char digits[24];
  auto number = [&](uint64_t v) {
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
    return std::string_view(digits, static_cast<size_t>(end - digits));
  };
  head.append("HTTP/1.1 ").append(number(static_cast<unsigned>(status))).append(" ");
  head.append(bhttp::obsolete_reason(status)).append("\r\n");
  head.append("Server: ").append(kServerName).append("\r\n");
  head.append("Content-Type: ").append(content_type).append("\r\n");
  if (extra.retry_after_seconds) head.append("Retry-After: ").append(number(extra.retry_after_seconds)).append("\r\n");
  if (!extra.backend.empty()) head.append(kBackendHeader).append(": ").append(extra.backend).append("\r\n");
  head.append(extra.lines);
  if (!keep_alive) head.append("Connection: close\r\n");
  head.append("Content-Length: ").append(number(body.size())).append("\r\n\r\n");
  const std::array<net::const_buffer, 2> response{net::buffer(head), net::buffer(body)};
  boost::system::error_code ec;
  co_await net::async_write(stream, response, net::redirect_error(common::kUseAwaitable, ec));
  co_return !ec && keep_alive;
}

common::Awaitable<bool> writeApiError(ClientStream& stream, openai::ApiError error,
                                   bool keep_alive, ExtraHeaders extra) {
  std::string body = openai::errorBody(error);
  co_return co_await writeBody(stream, static_cast<bhttp::status>(error.status), std::move(body),
                               "application/json", keep_alive, extra);
}

}  // namespace spillway::http
