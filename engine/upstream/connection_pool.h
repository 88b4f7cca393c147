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
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/asio_types.h"
#include "common/coarse_deadline.h"
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

  PlainStream& lowest();  // the TCP layer (close)

  BackendPtr backend;
  std::variant<PlainStream, TlsStream> stream;
  // The exchange's first-byte and idle timeouts (cancel, then
  // operation_aborted with fired()): no timer per request.
  common::CoarseDeadline deadline;
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

// One worker's connection pools, one per backend (by id). Like a pool, used
// by its worker thread only. A pool is shared so a request keeps it even if
// a config reload drops its backend meanwhile; it then closes with the
// request.
class ConnectionPools {
 public:
  std::shared_ptr<ConnectionPool> forBackend(const BackendPtr& b, size_t max_idle);
  // Drops the pools (their idle connections, and the backends they keep
  // alive) of backends for which `live(id)` is false.
  template <typename Live>
  void retainOnly(Live live) {
    std::erase_if(pools_, [&](const auto& entry) { return !live(entry.first); });
  }

 private:
  std::unordered_map<uint64_t, std::shared_ptr<ConnectionPool>> pools_;
};

// The client TLS contexts for https backends: one that verifies the peer
// (the system's roots) and one for backends with tls_insecure_skip_verify.
// Read-only after construction, shared by every worker and the health checks.
class TlsContexts {
 public:
  TlsContexts();
  ~TlsContexts();
  boost::asio::ssl::context* forBackend(const Backend& b) const;

 private:
  std::unique_ptr<boost::asio::ssl::context> verify_;
  std::unique_ptr<boost::asio::ssl::context> insecure_;
};

}  // namespace spillway::upstream
