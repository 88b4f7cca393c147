#include "http/responses.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>

namespace spillway::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

common::Awaitable<bool> writeBody(common::TcpStream& stream, bhttp::status status,
                               std::string body, std::string_view content_type, bool keep_alive,
                               ExtraHeaders extra) {
  bhttp::response<bhttp::string_body> res{status, 11};
  res.set(bhttp::field::server, kServerName);
  res.set(bhttp::field::content_type, content_type);
  if (extra.retry_after_seconds) res.set(bhttp::field::retry_after, std::to_string(extra.retry_after_seconds));
  if (!extra.backend.empty()) res.set(kBackendHeader, extra.backend);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  boost::system::error_code ec;
  co_await bhttp::async_write(stream, res, net::redirect_error(common::kUseAwaitable, ec));
  co_return !ec && keep_alive;
}

common::Awaitable<bool> writeApiError(common::TcpStream& stream, openai::ApiError error,
                                   bool keep_alive, ExtraHeaders extra) {
  std::string body = openai::errorBody(error);
  co_return co_await writeBody(stream, static_cast<bhttp::status>(error.status), std::move(body),
                               "application/json", keep_alive, extra);
}

}  // namespace spillway::http
