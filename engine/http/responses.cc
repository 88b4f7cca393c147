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
  for (std::string_view rest = extra.lines; !rest.empty();) {
    const size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    res.insert(line.substr(0, colon), value);
  }
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
