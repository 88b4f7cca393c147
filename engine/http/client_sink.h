// The response sink that writes to the client connection: the head
// formatted by hand (status, the upstream headers worth passing on, our
// Server and x-spillway-backend, stage headers such as Set-Cookie, the
// framing), a whole answer in one gather write, streams chunked with
// backpressure (a send completes when the socket took the bytes).
#pragma once

#include <string>

#include "upstream/response_sink.h"

namespace spillway::http {

class ClientStream;  // http/client_stream.h

class ClientSink final : public upstream::ResponseSink {
 public:
  // `extra_headers`: complete header lines ("Name: value\r\n") added to the
  // head; must outlive the sink. `idle_timeout` bounds each write.
  ClientSink(ClientStream& client, bool keep_alive, std::chrono::milliseconds idle_timeout,
             const std::string& extra_headers)
      : client_(client), keep_alive_(keep_alive), idle_timeout_(idle_timeout), extra_(extra_headers) {}

  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override;
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override;
  common::Awaitable<bool> sendBody(std::string_view bytes) override;
  common::Awaitable<bool> sendEnd() override;
  common::Awaitable<void> abort(std::string_view sse_error_event) override;
  bool started() const override { return started_; }

 private:
  std::string format(const upstream::ResponseHead& head) const;

  ClientStream& client_;
  const bool keep_alive_;
  const std::chrono::milliseconds idle_timeout_;
  const std::string& extra_;
  bool started_ = false;
  bool chunked_ = false;
};

}  // namespace spillway::http
