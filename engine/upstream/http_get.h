// One GET to a backend on a fresh connection (health probes, load metrics):
// its status and body, bounded in time and size.
#pragma once

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "common/asio_types.h"
#include "upstream/backend.h"

namespace spillway::upstream {

struct GetResult {
  int status = 0;
  std::string body;
};

// GET <backend's path prefix><path> with the backend's bearer key, if any.
// Errors: the connect or read failed, or took longer than `timeout`.
common::Awaitable<absl::StatusOr<GetResult>> httpGet(BackendPtr b, boost::asio::ssl::context* tls, std::string path,
                                                     std::chrono::milliseconds timeout, size_t body_limit);

}  // namespace spillway::upstream
