// Keep-alive connections to one backend, owned by one worker thread. The
// pool is not thread-safe by design: each worker has its own, so taking and
// returning a connection costs no lock.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <variant>
#include <vector>

#include "common/asio_types.h"
#include "absl/status/statusor.h"
#include "upstream/backend.h"

namespace spillway::upstream {

using PlainStream = common::TcpStream;
using TlsStream = boost::beast::ssl_stream<common::TcpStream>;

// One open connection. Counts itself in the backend's open_connections.
struct Connection {
  Connection(BackendPtr b, PlainStream s);
  Connection(BackendPtr b, TlsStream s);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PlainStream& lowest();  // the TCP layer (timeouts, close)

  BackendPtr backend;
  std::variant<PlainStream, TlsStream> stream;
  boost::beast::flat_buffer buffer;
  uint64_t requests = 0;  // served on this connection so far
};
using ConnectionPtr = std::unique_ptr<Connection>;

// Opens a connection (resolve, connect, TLS handshake with SNI and peer
// verification) within `timeout`. `tls` is used for https backends.
common::Awaitable<absl::StatusOr<ConnectionPtr>> openConnection(
    BackendPtr backend, boost::asio::ssl::context* tls, std::chrono::milliseconds timeout);

class ConnectionPool {
 public:
  ConnectionPool(BackendPtr backend, size_t max_idle) : backend_(std::move(backend)), max_idle_(max_idle) {}
  ~ConnectionPool();

  // The most recently used idle connection, or nullptr.
  ConnectionPtr takeIdle();
  // Returns a connection that finished a response cleanly and may be reused.
  void putBack(ConnectionPtr c);
  size_t idleCount() const { return idle_.size(); }

 private:
  BackendPtr backend_;
  size_t max_idle_;
  std::vector<ConnectionPtr> idle_;
};

}  // namespace spillway::upstream
