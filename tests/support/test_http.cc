#include "support/test_http.h"

#include <optional>

#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <memory>
#include <thread>

namespace spillway::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

tcp::endpoint loopback(uint16_t port) { return {net::ip::make_address("127.0.0.1"), port}; }

// Response headers with lower-cased names.
template <typename Message>
std::map<std::string, std::string> lowerCaseHeaders(const Message& m) {
  std::map<std::string, std::string> out;
  for (const auto& f : m) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out[name] = std::string(f.value());
  }
  return out;
}

template <typename Fn>
void runBounded(Fn&& fn, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  net::co_spawn(ioc, fn(ioc), net::detached);
  ioc.run_for(timeout + 1s);  // the stream timeouts fire first; this is a backstop
}

// Connects to 127.0.0.1:port and writes `req`; returns "" or what failed.
awaitable<std::string> connectAndSend(beast::tcp_stream& s, uint16_t port, http::request<http::string_body>& req) {
  boost::system::error_code ec;
  co_await s.async_connect(loopback(port), net::redirect_error(use_awaitable, ec));
  if (ec) co_return "connect: " + ec.message();
  co_await http::async_write(s, req, net::redirect_error(use_awaitable, ec));
  if (ec) co_return "write: " + ec.message();
  co_return std::string();
}

}  // namespace

HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, const Headers& headers, std::chrono::milliseconds timeout) {
  HttpResult out;
  runBounded(
      [&](net::io_context& ioc) -> awaitable<void> {
        beast::tcp_stream s(ioc);
        s.expires_after(timeout);
        http::request<http::string_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, "127.0.0.1");
        for (const auto& [k, v] : headers) req.set(k, v);
        req.body() = body;
        if (!body.empty() || method == "POST") req.prepare_payload();
        out.error = co_await connectAndSend(s, port, req);
        if (!out.error.empty()) co_return;
        boost::system::error_code ec;
        beast::flat_buffer buf;
        http::response_parser<http::string_body> p;
        p.body_limit(64 << 20);
        co_await http::async_read(s, buf, p, net::redirect_error(use_awaitable, ec));
        if (p.is_header_done()) {
          out.status = p.get().result_int();
          out.headers = lowerCaseHeaders(p.get());
          out.body = p.get().body();
        }
        if (ec) out.error = "read: " + ec.message();
      },
      timeout);
  return out;
}

StreamResult streamRequest(uint16_t port, const std::string& target, const std::string& body,
                           std::chrono::milliseconds timeout,
                           const std::function<void(const SseEvent&)>& on_event) {
  StreamResult out;
  runBounded(
      [&](net::io_context& ioc) -> awaitable<void> {
        beast::tcp_stream s(ioc);
        s.expires_after(timeout);
        http::request<http::string_body> req{http::verb::post, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "application/json");
        req.body() = body;
        req.prepare_payload();
        const auto sent = Clock::now();
        out.error = co_await connectAndSend(s, port, req);
        if (!out.error.empty()) co_return;
        boost::system::error_code ec;
        beast::flat_buffer buf;
        http::response_parser<http::buffer_body> p;
        p.body_limit(std::numeric_limits<std::uint64_t>::max());
        co_await http::async_read_header(s, buf, p, net::redirect_error(use_awaitable, ec));
        if (ec) {
          out.error = "read header: " + ec.message();
          co_return;
        }
        out.status = p.get().result_int();
        out.headers = lowerCaseHeaders(p.get());
        std::string pending;
        char chunk[8192];
        while (!p.is_done()) {
          p.get().body().data = chunk;
          p.get().body().size = sizeof chunk;
          co_await http::async_read_some(s, buf, p, net::redirect_error(use_awaitable, ec));
          if (ec == http::error::need_buffer) ec = {};
          pending.append(chunk, sizeof chunk - p.get().body().size);
          size_t end;
          while ((end = pending.find("\n\n")) != std::string::npos) {
            std::string event = pending.substr(0, end);
            pending.erase(0, end + 2);
            if (auto parsed = parseSseEvent(event)) {
              SseEvent e{std::chrono::duration<double, std::milli>(Clock::now() - sent).count(), parsed->second,
                         parsed->first};
              out.events.push_back(e);
              if (on_event) on_event(out.events.back());
            }
          }
          if (ec) {
            out.error = "read body: " + ec.message();
            co_return;
          }
        }
        out.complete = true;
      },
      timeout);
  return out;
}

std::future<StreamResult> startStream(uint16_t port, const std::string& target, const std::string& body,
                                      std::chrono::milliseconds timeout) {
  auto started = std::make_shared<std::promise<void>>();
  auto fired = std::make_shared<std::atomic<bool>>(false);
  auto signal = [started, fired] {
    if (!fired->exchange(true)) started->set_value();
  };
  auto result = std::async(std::launch::async, [=] {
    auto r = streamRequest(port, target, body, timeout, [&](const SseEvent&) { signal(); });
    signal();
    return r;
  });
  started->get_future().wait();
  return result;
}

RawResult rawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout) {
  RawResult out;
  out.timed_out = true;
  runBounded(
      [&](net::io_context& ioc) -> awaitable<void> {
        beast::tcp_stream s(ioc);
        s.expires_after(timeout);
        boost::system::error_code ec;
        co_await s.async_connect(loopback(port), net::redirect_error(use_awaitable, ec));
        if (ec) co_return;
        co_await net::async_write(s, net::buffer(bytes), net::redirect_error(use_awaitable, ec));
        char buf[4096];
        for (;;) {
          size_t n = co_await s.async_read_some(net::buffer(buf), net::redirect_error(use_awaitable, ec));
          out.received.append(buf, n);
          if (ec) {
            out.timed_out = ec == beast::error::timeout;
            co_return;
          }
        }
      },
      timeout);
  return out;
}

uint16_t closedPort() {
  net::io_context ioc;
  tcp::acceptor a(ioc, loopback(0));
  uint16_t port = a.local_endpoint().port();
  a.close();
  return port;
}

std::optional<std::pair<std::string, std::string>> parseSseEvent(std::string_view block) {
  std::string type;
  while (block.rfind("event: ", 0) == 0) {
    const size_t nl = block.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    type = std::string(block.substr(7, nl - 7));
    block.remove_prefix(nl + 1);
  }
  if (block.rfind("data: ", 0) != 0) return std::nullopt;
  return std::make_pair(std::move(type), std::string(block.substr(6)));
}

std::vector<std::string> sseData(std::string_view body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string_view::npos) break;
    std::string_view event = body.substr(pos, end - pos);
    if (auto parsed = parseSseEvent(event)) out.push_back(std::move(parsed->second));
    pos = end + 2;
  }
  return out;
}

bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);  // polling a condition, not waiting for time to pass
  }
  return cond();
}

HeldRequest::HeldRequest(uint16_t port, const std::string& target, const std::string& body) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
  const std::string request = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t done = 0;
  while (done < request.size()) {
    const ssize_t n = ::send(fd_, request.data() + done, request.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
  sent_ = true;
}

HeldRequest::~HeldRequest() { close(); }

void HeldRequest::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace spillway::testing
