#include "fakes/tls_backend.h"

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

namespace spillway::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using net::use_awaitable;

struct TlsBackend::Impl {
  net::io_context ioc;
  net::ssl::context tls{net::ssl::context::tls_server};
  tcp::acceptor acceptor{ioc};
  std::atomic<int> served{0};
  std::atomic<int> probes{0};
  std::thread thread;

  net::awaitable<void> session(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls);
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    co_await stream.async_handshake(net::ssl::stream_base::server, net::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      co_await http::async_read(stream, buf, req, net::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      if (req.method() == http::verb::get) {
        res.body() = R"({"status":"ok"})";
        probes++;
      } else {
        res.body() = R"({"id":"tls-1","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,)"
                     R"("message":{"role":"assistant","content":"over tls"},"finish_reason":"stop"}],)"
                     R"("usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})";
        served++;
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      co_await http::async_write(stream, res, net::redirect_error(use_awaitable, ec));
      if (ec || !req.keep_alive()) co_return;
    }
  }

  net::awaitable<void> acceptLoop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket s = co_await acceptor.async_accept(net::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      net::co_spawn(ioc, session(std::move(s)), net::detached);
    }
  }
};

TlsBackend::TlsBackend(const std::string& cert_pem, const std::string& key_pem) : impl_(std::make_unique<Impl>()) {
  impl_->tls.use_certificate_chain_file(cert_pem);
  impl_->tls.use_private_key_file(key_pem, net::ssl::context::pem);
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  net::co_spawn(impl_->ioc, impl_->acceptLoop(), net::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

TlsBackend::~TlsBackend() {
  impl_->ioc.stop();
  impl_->thread.join();
}

uint16_t TlsBackend::port() const { return impl_->acceptor.local_endpoint().port(); }

int TlsBackend::requestsServed() const { return impl_->served.load(); }

int TlsBackend::probesServed() const { return impl_->probes.load(); }

}  // namespace spillway::testing
