// The front listener: accepts client connections, reads HTTP/1.1 requests
// with limits and timeouts, answers protocol errors itself (400, 408, 413,
// 431) and hands every well-formed request to the Gateway. Connections are
// spread over the IoPool's workers and stay on one worker for life.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "common/io_pool.h"
#include "http/gateway.h"
#include "spillway/v1/config.pb.h"

namespace spillway::http {

class FrontServer {
 public:
  // The front listener (the API), or the metrics listener
  // (server.metrics_listen: /metrics, /healthz, /readyz, plain HTTP).
  enum class Role { kFront, kMetrics };
  // `server` must have defaults applied. `gateway` and `io` outlive this.
  // The metrics listener listens on server.metrics_listen.
  FrontServer(common::IoPool& io, Gateway& gateway, v1::Server server, Role role = Role::kFront);
  ~FrontServer();

  // Binds `server.listen` (port 0 picks one) and starts accepting.
  absl::Status start();
  uint16_t port() const { return port_.load(); }
  // "http://127.0.0.1:8080" ("https://..." with server.tls)
  std::string url() const;

  // Graceful drain: stop accepting, close idle keep-alive connections, and
  // let requests in flight finish (their connections close afterwards).
  // Returns true when every connection closed before `timeout`.
  bool drain(std::chrono::milliseconds timeout);

  // Stops accepting and closes every client connection now, idle or busy:
  // a request in flight loses its client (it sees the connection end; a
  // stream ends mid-answer). Returns once every worker has closed its
  // connections, or after `timeout` (a worker stuck elsewhere).
  void closeAll(std::chrono::milliseconds timeout);

  // Swaps in new limits and timeouts (not the listen address: that needs a
  // new FrontServer). Requests that already started keep the old ones. The
  // TLS certificate is read again (a renewal); if it cannot be, the one in
  // use stays and the error is logged and in tlsStats(). Connections open
  // keep the certificate they started with.
  void setServerConfig(v1::Server server);

  // The limits and timeouts in force (server.*).
  std::shared_ptr<const v1::Server> serverConfig() const;

  // Connections open now (for tests and metrics).
  int64_t openConnections() const;

  // The gateway's own limits (server.overload) as they stand: what is in
  // use, and what was turned away since this listener started.
  struct OverloadStats {
    int64_t open_connections = 0;
    int64_t active_requests = 0;
    uint64_t memory_bytes = 0;  // at the last check (0 without a budget)
    bool keep_alive_off = false;  // a limit is near: answers close their connection
    uint64_t refused_connections = 0;  // max_connections
    uint64_t refused_per_client = 0;   // max_connections_per_client
    uint64_t refused_requests = 0;     // max_active_requests
    uint64_t refused_memory = 0;       // memory_budget_bytes
  };
  OverloadStats overloadStats() const;
  // HTTPS at the front door (server.tls) as it stands.
  struct TlsStats {
    bool enabled = false;
    std::string subject;  // the serving certificate's subject
    int64_t not_after_unix = 0;
    int64_t reloaded_unix = 0;  // when the certificate in use was read
    bool client_certificates = false;  // a client CA is set
    bool client_certificates_required = false;
    uint64_t handshake_failures = 0;  // since the listener started
    uint64_t reloads = 0;             // certificates swapped in after the first
    uint64_t reload_failures = 0;     // unreadable or mismatched files (the old one stays)
    std::string last_error;           // of the last failed reload, "" once one succeeds
  };
  TlsStats tlsStats() const;

  // How the memory budget is measured (bytes the process uses now; called
  // every 100 ms while a budget is set). Default: resident memory from
  // /proc/self/statm. Set before start().
  void setMemoryGauge(std::function<uint64_t()> gauge);

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  std::atomic<uint16_t> port_{0};
};

}  // namespace spillway::http
