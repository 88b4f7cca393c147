// The client side of one request, for a stage that writes its answer
// itself (a coalesced waiter relaying the leader's stream). The gateway
// implements it over the client connection; tests can implement it over
// anything that takes a ResponseSink's calls.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "upstream/response_sink.h"

namespace spillway::pipeline {

class ClientChannel {
 public:
  virtual ~ClientChannel() = default;
  // A sink that writes to the client. `headers` (complete header lines,
  // "Name: value\r\n") go into the head and must outlive the sink;
  // `idle_timeout` bounds each write.
  virtual std::unique_ptr<upstream::ResponseSink> sink(const std::string& headers,
                                                       std::chrono::milliseconds idle_timeout) = 0;
};

}  // namespace spillway::pipeline
