#include "http/client_sink.h"

#include <array>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <charconv>

#include "http/client_stream.h"
#include "http/responses.h"

namespace spillway::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

void addField(std::string& head, std::string_view name, std::string_view value) {
  head.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

std::string ClientSink::format(const upstream::ResponseHead& h) const {
  std::string out;
  out.reserve(256 + extra_.size());
  char code[8];
  const auto [code_end, code_ec] = std::to_chars(code, code + sizeof code, h.status);
  out.append("HTTP/1.1 ").append(code, code_end).append(" ").append(h.reason).append("\r\n");
  addField(out, "Server", kServerName);
  if (!h.content_type.empty()) addField(out, "Content-Type", h.content_type);
  if (!h.retry_after.empty()) addField(out, "Retry-After", h.retry_after);
  if (!h.cache_control.empty()) addField(out, "Cache-Control", h.cache_control);
  if (!h.backend.empty()) addField(out, kBackendHeader, h.backend);
  out.append(extra_);
  if (!keep_alive_) addField(out, "Connection", "close");
  if (h.length) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, *h.length);
    addField(out, "Content-Length", std::string_view(digits, static_cast<size_t>(end - digits)));
  } else {
    addField(out, "Transfer-Encoding", "chunked");
  }
  out.append("\r\n");
  return out;
}

common::Awaitable<bool> ClientSink::sendWhole(const upstream::ResponseHead& head, std::string_view body) {
  started_ = true;
  const std::string out = format(head);
  const std::array<net::const_buffer, 2> response{net::buffer(out), net::buffer(body)};
  boost::system::error_code ec;
  client_.expires_after(idle_timeout_);
  co_await net::async_write(client_, response, net::redirect_error(common::kUseAwaitable, ec));
  client_.expires_never();
  co_return !ec;
}

common::Awaitable<bool> ClientSink::sendHead(const upstream::ResponseHead& head) {
  started_ = true;
  chunked_ = !head.length.has_value();
  const std::string out = format(head);
  boost::system::error_code ec;
  client_.expires_after(idle_timeout_);
  co_await net::async_write(client_, net::buffer(out), net::redirect_error(common::kUseAwaitable, ec));
  co_return !ec;
}

common::Awaitable<bool> ClientSink::sendBody(std::string_view bytes) {
  boost::system::error_code ec;
  client_.expires_after(idle_timeout_);
  if (chunked_) {
    co_await net::async_write(client_, bhttp::make_chunk(net::buffer(bytes)), net::redirect_error(common::kUseAwaitable, ec));
  } else {
    co_await net::async_write(client_, net::buffer(bytes), net::redirect_error(common::kUseAwaitable, ec));
  }
  co_return !ec;
}

common::Awaitable<bool> ClientSink::sendEnd() {
  boost::system::error_code ec;
  if (chunked_) {
    client_.expires_after(idle_timeout_);
    co_await net::async_write(client_, bhttp::make_chunk_last(), net::redirect_error(common::kUseAwaitable, ec));
  }
  client_.expires_never();
  co_return !ec;
}

common::Awaitable<void> ClientSink::abort(std::string_view sse_error_event) {
  // The connection closes after this without the final chunk, so the client
  // cannot take a broken answer for a complete one.
  if (chunked_ && !sse_error_event.empty()) {
    boost::system::error_code ec;
    client_.expires_after(idle_timeout_);
    co_await net::async_write(client_, bhttp::make_chunk(net::buffer(sse_error_event)),
                              net::redirect_error(common::kUseAwaitable, ec));
  }
  client_.expires_never();
}

}  // namespace spillway::http
