// The front listener: accepts client connections, reads HTTP/1.1 requests
// with limits and timeouts, answers protocol errors itself (400, 408, 413,
// 431) and hands every well-formed request to the Gateway. Connections are
// spread over the IoPool's workers and stay on one worker for life.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
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
  // `server` must have defaults applied. `gateway` and `io` outlive this.
  FrontServer(common::IoPool& io, Gateway& gateway, v1::Server server);
  ~FrontServer();

  // Binds `server.listen` (port 0 picks one) and starts accepting.
  absl::Status start();
  uint16_t port() const { return port_.load(); }
  // "http://127.0.0.1:8080"
  std::string url() const;

  // Graceful drain: stop accepting, close idle keep-alive connections, and
  // let requests in flight finish (their connections close afterwards).
  // Returns true when every connection closed before `timeout`.
  bool drain(std::chrono::milliseconds timeout);

  // Swaps in new limits and timeouts (not the listen address: that needs a
  // new FrontServer). Requests that already started keep the old ones.
  void setServerConfig(v1::Server server);

  // Connections open now (for tests and metrics).
  int64_t openConnections() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  std::atomic<uint16_t> port_{0};
};

}  // namespace spillway::http
