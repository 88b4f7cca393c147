// A small loopback HTTP client for tests, built on Beast with a private
// io_context so every call is bounded by its timeout and never hangs a test.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace spillway::testing {

using namespace std::chrono_literals;

struct HttpResult {
  int status = 0;                              // 0 when no response arrived
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string error;  // transport error, if any
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One request on a fresh connection to 127.0.0.1:port.
HttpResult httpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "", const Headers& headers = {},
                       std::chrono::milliseconds timeout = 15s);

inline HttpResult postJson(uint16_t port, const std::string& target, const std::string& body,
                           std::chrono::milliseconds timeout = 15s) {
  return httpRequest(port, "POST", target, body, {{"Content-Type", "application/json"}}, timeout);
}

struct SseEvent {
  double at_ms = 0;  // since the request was sent
  std::string data;  // the payload after "data: "
  std::string type;  // the "event: " line's, if any (the Responses API's typed events)
};

// An event block's (type, data): "event: T\ndata: D" or "data: D"; nullopt
// for a block without data (comments, keep-alives).
std::optional<std::pair<std::string, std::string>> parseSseEvent(std::string_view block);

struct StreamResult {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::vector<SseEvent> events;
  bool complete = false;  // the HTTP message ended cleanly
  std::string error;      // transport error, if any
  bool sawDone() const { return !events.empty() && events.back().data == "[DONE]"; }
};

// POSTs `body` and collects the Server-Sent Events as they arrive.
// `on_event` (optional) runs on the calling thread after each event.
StreamResult streamRequest(uint16_t port, const std::string& target, const std::string& body,
                           std::chrono::milliseconds timeout = 30s,
                           const std::function<void(const SseEvent&)>& on_event = {});

// Starts a streaming request on another thread and returns once its first
// event has arrived (or the stream ended without one); the future yields the
// whole result.
std::future<StreamResult> startStream(uint16_t port, const std::string& target, const std::string& body,
                                      std::chrono::milliseconds timeout = 30s);

// Sends raw bytes and returns everything received until the peer closes
// or `timeout` passes (then `timed_out` is set).
struct RawResult {
  std::string received;
  bool timed_out = false;
};
RawResult rawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout = 10s);

// A loopback port with nothing listening (bound, then closed).
uint16_t closedPort();

// Client threads for load in a test: stop() sets the flag they poll and
// joins them. Also on destruction, so a failing QVERIFY (which returns
// early) cannot leave joinable threads behind to abort the run.
class ClientThreads {
 public:
  ~ClientThreads() { stop(); }
  template <typename F>
  void start(F body) {
    threads_.emplace_back(std::move(body));
  }
  bool stopping() const { return stop_.load(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// POSTs `body` to 127.0.0.1:port on a raw connection and never reads the
// answer: the request holds whatever it holds (a slot, a stream) until
// close() or destruction. For tests where a request must stay in flight
// for as long as the test needs, with no time window.
class HeldRequest {
 public:
  HeldRequest(uint16_t port, const std::string& target, const std::string& body);
  ~HeldRequest();
  HeldRequest(const HeldRequest&) = delete;
  HeldRequest& operator=(const HeldRequest&) = delete;
  bool sent() const { return sent_; }
  void close();

 private:
  int fd_ = -1;
  bool sent_ = false;
};

// "data: ..." payloads of a complete SSE body.
std::vector<std::string> sseData(std::string_view body);

// Polls `cond` every few milliseconds until true or `timeout`; returns cond().
bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s);

}  // namespace spillway::testing
