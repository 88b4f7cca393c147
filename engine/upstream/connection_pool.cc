#include "upstream/connection_pool.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/asio_types.h"
#include "common/strings.h"

namespace spillway::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

Connection::Connection(BackendPtr b, PlainStream s)
    : backend(std::move(b)), stream(std::move(s)), deadline(lowest().socket()) {
  backend->open_connections.fetch_add(1, std::memory_order_relaxed);
}

Connection::Connection(BackendPtr b, TlsStream s)
    : backend(std::move(b)), stream(std::move(s)), deadline(lowest().socket()) {
  backend->open_connections.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() { backend->open_connections.fetch_sub(1, std::memory_order_relaxed); }

PlainStream& Connection::lowest() {
  if (auto* p = std::get_if<PlainStream>(&stream)) return *p;
  return beast::get_lowest_layer(std::get<TlsStream>(stream));
}

common::Awaitable<absl::StatusOr<ConnectionPtr>> openConnection(BackendPtr backend, net::ssl::context* tls,
                                                             std::chrono::milliseconds timeout) {
  auto ex = co_await net::this_coro::executor;
  const auto& url = backend->url();
  boost::system::error_code ec;
  common::TcpResolver resolver(ex);
  auto results = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                 net::redirect_error(common::kUseAwaitable, ec));
  if (ec) {
    co_return absl::UnavailableError(common::strCat("cannot resolve ", url.host, ": ", ec.message()));
  }
  common::TcpStream tcp_stream(ex);
  tcp_stream.expires_after(timeout);
  co_await tcp_stream.async_connect(results, net::redirect_error(common::kUseAwaitable, ec));
  if (ec) {
    if (ec == beast::error::timeout) {
      co_return absl::DeadlineExceededError(common::strCat("connect to ", url.hostHeader(), " timed out"));
    }
    co_return absl::UnavailableError(common::strCat("connect to ", url.hostHeader(), ": ", ec.message()));
  }
  tcp_stream.socket().set_option(tcp::no_delay(true), ec);
  if (url.scheme != "https") {
    tcp_stream.expires_never();
    co_return std::make_unique<Connection>(backend, std::move(tcp_stream));
  }
  if (!tls) co_return absl::FailedPreconditionError("https backend without a TLS context");
  TlsStream tls_stream(std::move(tcp_stream), *tls);
  if (!SSL_set_tlsext_host_name(tls_stream.native_handle(), url.host.c_str())) {
    co_return absl::InternalError("cannot set TLS SNI host name");
  }
  if (!backend->config().tls_insecure_skip_verify()) {
    tls_stream.set_verify_mode(net::ssl::verify_peer);
    // OpenSSL checks the certificate's names against the host during the
    // handshake (SSL_set1_host); IP literals are matched as IP SANs.
    if (!SSL_set1_host(tls_stream.native_handle(), url.host.c_str())) {
      co_return absl::InternalError("cannot set TLS verification host name");
    }
  } else {
    tls_stream.set_verify_mode(net::ssl::verify_none);
  }
  co_await tls_stream.async_handshake(net::ssl::stream_base::client,
                                      net::redirect_error(common::kUseAwaitable, ec));
  if (ec) {
    co_return absl::UnavailableError(common::strCat("TLS handshake with ", url.hostHeader(), ": ", ec.message()));
  }
  beast::get_lowest_layer(tls_stream).expires_never();
  co_return std::make_unique<Connection>(backend, std::move(tls_stream));
}

ConnectionPool::~ConnectionPool() {
  backend_->idle_connections.fetch_sub(static_cast<int64_t>(idle_.size()), std::memory_order_relaxed);
}

ConnectionPtr ConnectionPool::takeIdle() {
  while (!idle_.empty()) {
    ConnectionPtr c = std::move(idle_.back());
    idle_.pop_back();
    backend_->idle_connections.fetch_sub(1, std::memory_order_relaxed);
    // No liveness probe here (it would cost a syscall per request): a
    // connection the peer closed while idle fails before any response byte,
    // and the gateway retries such a request once on a fresh connection.
    if (!c->lowest().socket().is_open()) continue;
    return c;
  }
  return nullptr;
}

void ConnectionPool::putBack(ConnectionPtr c) {
  if (idle_.size() >= max_idle_) return;  // dropping closes it
  c->lowest().expires_never();
  idle_.push_back(std::move(c));
  backend_->idle_connections.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<ConnectionPool> ConnectionPools::forBackend(const BackendPtr& b, size_t max_idle) {
  auto& p = pools_[b->id()];
  if (!p) p = std::make_shared<ConnectionPool>(b, max_idle);
  return p;
}

TlsContexts::TlsContexts()
    : verify_(std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client)),
      insecure_(std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client)) {
  verify_->set_default_verify_paths();
}

TlsContexts::~TlsContexts() = default;

boost::asio::ssl::context* TlsContexts::forBackend(const Backend& b) const {
  return b.config().tls_insecure_skip_verify() ? insecure_.get() : verify_.get();
}

}  // namespace spillway::upstream
