// A client channel that records what was written to it, for tests of
// stages and the attempt loop without sockets (pipeline/client_channel.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "pipeline/client_channel.h"
#include "upstream/response_sink.h"

namespace spillway::testing {

// What a stage wrote to the client.
struct Recorded {
  int status = 0;
  bool event_stream = false;
  std::string headers;
  std::string body;
  bool ended = false;
  std::string aborted_with;
};

class RecordingSink final : public upstream::ResponseSink {
 public:
  RecordingSink(Recorded& r, const std::string& headers) : r_(r) { r_.headers = headers; }
  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override {
    started_ = true;
    r_.status = head.status;
    r_.body = body;
    r_.ended = true;
    co_return true;
  }
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override {
    started_ = true;
    r_.status = head.status;
    r_.event_stream = head.event_stream;
    co_return true;
  }
  common::Awaitable<bool> sendBody(std::string_view bytes) override {
    r_.body += bytes;
    co_return true;
  }
  common::Awaitable<bool> sendEnd() override {
    r_.ended = true;
    co_return true;
  }
  common::Awaitable<void> abort(std::string_view event) override {
    r_.aborted_with = event;
    co_return;
  }
  bool started() const override { return started_; }

 private:
  Recorded& r_;
  bool started_ = false;
};

class RecordingChannel final : public pipeline::ClientChannel {
 public:
  std::unique_ptr<upstream::ResponseSink> sink(const std::string& headers, std::chrono::milliseconds) override {
    return std::make_unique<RecordingSink>(recorded, headers);
  }
  Recorded recorded;
};

}  // namespace spillway::testing
