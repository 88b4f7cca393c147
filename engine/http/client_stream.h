// The client's connection at the front door: plain TCP, or TLS over it when
// the listener has a certificate (server.tls). Reads and writes go to the
// layer in use, so Beast's parser and the response writers take it as any
// stream; a coarse deadline (expires_after: common::CoarseDeadline, no timer
// per write) bounds both, TLS records included — when it passes, the
// pending operation ends with operation_aborted. Lives in its session's
// coroutine frame, on one worker.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/asio_types.h"
#include "common/coarse_deadline.h"

namespace spillway::http {

class ClientStream {
 public:
  using executor_type = common::Executor;

  explicit ClientStream(common::TcpSocket socket) : tcp_(std::move(socket)), deadline_(tcp_.socket()) {}

  // TLS on this connection, with `context` (kept for the connection's life,
  // so a reloaded certificate only reaches new connections). Then call
  // handshake() before anything else.
  void useTls(std::shared_ptr<boost::asio::ssl::context> context);
  // The server side of the handshake, bounded by `timeout`. Fills
  // clientCertCn() when the client sent a certificate the client CA signed.
  common::Awaitable<boost::system::error_code> handshake(std::chrono::milliseconds timeout);

  bool tls() const { return tls_.has_value(); }
  // The verified client certificate's subject common name ("" without one).
  const std::string& clientCertCn() const { return client_cert_cn_; }
  // Where the peer's address is kept once a request asked for it
  // (pipeline::clientAddress): one getpeername a connection.
  std::string& peerAddressCache() { return peer_address_; }

  executor_type get_executor() noexcept { return tcp_.get_executor(); }
  common::TcpSocket& socket() { return tcp_.socket(); }
  void expires_after(std::chrono::steady_clock::duration d) { deadline_.expiresAfter(d); }
  void expires_never() { deadline_.disarm(); }
  void close() { tcp_.close(); }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) tls_->async_read_some(b, std::move(handler));
          else tcp_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }
  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) tls_->async_write_some(b, std::move(handler));
          else tcp_.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

 private:
  common::TcpStream tcp_;
  common::CoarseDeadline deadline_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::optional<boost::asio::ssl::stream<common::TcpStream&>> tls_;
  std::string client_cert_cn_;
  std::string peer_address_;
};

}  // namespace spillway::http
