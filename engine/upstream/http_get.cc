#include "upstream/http_get.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>

#include "common/strings.h"
#include "upstream/connection_pool.h"

namespace spillway::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

template <typename Stream>
common::Awaitable<absl::StatusOr<GetResult>> getOver(Stream& stream, beast::flat_buffer& buffer, const Backend& b,
                                                     const std::string& target, size_t body_limit) {
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, b.url().hostHeader());
  req.set(http::field::user_agent, "spillway");
  if (!b.apiKey().empty()) req.set(http::field::authorization, "Bearer " + b.apiKey());
  req.keep_alive(false);
  boost::system::error_code ec;
  co_await http::async_write(stream, req, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) co_return absl::UnavailableError(common::strCat("GET ", target, ": ", ec.message()));
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  co_await http::async_read(stream, buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) co_return absl::UnavailableError(common::strCat("GET ", target, ": ", ec.message()));
  co_return GetResult{static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
}

}  // namespace

common::Awaitable<absl::StatusOr<GetResult>> httpGet(BackendPtr b, net::ssl::context* tls, std::string path,
                                                     std::chrono::milliseconds timeout, size_t body_limit) {
  auto conn = co_await openConnection(b, tls, timeout);
  if (!conn.ok()) co_return conn.status();
  auto& c = **conn;
  c.lowest().expires_after(timeout);
  const std::string target = b->url().path_prefix + path;
  if (auto* plain = std::get_if<PlainStream>(&c.stream)) {
    co_return co_await getOver(*plain, c.buffer, *b, target, body_limit);
  }
  co_return co_await getOver(std::get<TlsStream>(c.stream), c.buffer, *b, target, body_limit);
}

}  // namespace spillway::upstream
