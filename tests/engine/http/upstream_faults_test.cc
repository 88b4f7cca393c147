#include "upstream_faults_test.h"

#include <QtTest>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "engine.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;
namespace net = boost::asio;

namespace {

// One misbehaviour per backend: every connection reads a request's head,
// then does what `act` says. Stops (closing every socket) on destruction.
class RawBackend {
 public:
  using Act = std::function<void(net::ip::tcp::socket&)>;
  explicit RawBackend(Act act) : act_(std::move(act)), acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    acceptor_thread_ = std::thread([this] {
      for (;;) {
        auto socket = std::make_shared<net::ip::tcp::socket>(io_);
        boost::system::error_code ec;
        acceptor_.accept(*socket, ec);
        if (ec || stopping_) return;
        sockets_.push_back(socket);
        workers_.emplace_back([this, socket] {
          net::streambuf head;
          boost::system::error_code rec;
          net::read_until(*socket, head, "\r\n\r\n", rec);
          if (!rec) act_(*socket);
        });
      }
    });
  }
  ~RawBackend() {
    stopping_ = true;
    boost::system::error_code ec;
    net::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);  // wakes the blocking accept
    acceptor_thread_.join();
    for (auto& s : sockets_) s->shutdown(net::ip::tcp::socket::shutdown_both, ec);
    for (auto& w : workers_) w.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Blocks until the gateway closes the connection (a hang).
  static void waitForClose(net::ip::tcp::socket& s) {
    char buf[1024];
    boost::system::error_code ec;
    while (!ec) s.read_some(net::buffer(buf), ec);
  }

 private:
  Act act_;
  net::io_context io_;
  net::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_thread_;
  std::vector<std::shared_ptr<net::ip::tcp::socket>> sockets_;  // the acceptor thread's, read after join
  std::vector<std::thread> workers_;
};

// The gateway in front of `backend`: short timeouts, no retries, no health
// checks (the raw backend would fail them), and a simulator "ok" on its own
// model to show the gateway still serves.
std::unique_ptr<Engine> gatewayFor(const RawBackend& backend, const std::string& upstream_extra = "") {
  const std::string backends = "  - name: raw\n    url: http://127.0.0.1:" + std::to_string(backend.port()) +
                               "\n    models: [raw]\n    health_check: {path: none}\n"
                               "  - name: ok\n    url: sim://ok\n    models: [ok]\n    sim: {profile: instant}\n";
  const std::string extra = "upstream:\n  first_byte_timeout_ms: 300\n  idle_timeout_ms: 300\n  retry: {max_attempts: 1}\n" +
                            upstream_extra + "admission: {disabled: true}\n";
  auto e = Engine::start(configFromYaml(engineYaml(backends, "") + extra), EngineOptions{"", "test", false});
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

const std::string kRaw = R"({"model":"raw","messages":[{"role":"user","content":"hi"}]})";
const std::string kRawStream = R"({"model":"raw","stream":true,"messages":[{"role":"user","content":"hi"}]})";
const std::string kOk = R"({"model":"ok","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})";

void verifyStillServes(Engine& e) { QCOMPARE(postJson(e.port(), "/v1/chat/completions", kOk).status, 200); }

// A non-stream request to `backend` gets `status` with an OpenAI error
// body, and the gateway goes on serving its other model.
void expectErrorThenStillServes(const RawBackend& backend, int status) {
  auto engine = gatewayFor(backend);
  auto r = postJson(engine->port(), "/v1/chat/completions", kRaw);
  QCOMPARE(r.status, status);
  QVERIFY2(r.body.find("\"error\"") != std::string::npos, r.body.c_str());
  verifyStillServes(*engine);
}

}  // namespace

void UpstreamFaultsTest::hangBeforeTheFirstByteIsA504() {
  RawBackend backend([](net::ip::tcp::socket& s) { RawBackend::waitForClose(s); });
  expectErrorThenStillServes(backend, 504);
}

void UpstreamFaultsTest::hangMidStreamEndsWithAnErrorEvent() {
  RawBackend backend([](net::ip::tcp::socket& s) {
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string event =
        R"(data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"raw","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})"
        "\n\n";
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", event.size());
    const std::string chunk = size + event + "\r\n";
    boost::system::error_code ec;
    net::write(s, net::buffer(head + chunk), ec);
    RawBackend::waitForClose(s);  // and then nothing more
  });
  auto engine = gatewayFor(backend);
  auto r = streamRequest(engine->port(), "/v1/chat/completions", kRawStream, 30s);
  QCOMPARE(r.status, 200);
  QVERIFY(!r.events.empty());
  QVERIFY(r.events.front().data.find("Hel") != std::string::npos);  // what arrived was relayed
  QVERIFY(!r.sawDone());
  QVERIFY2(r.events.back().data.find("\"error\"") != std::string::npos, r.events.back().data.c_str());
  verifyStillServes(*engine);
}

void UpstreamFaultsTest::invalidHttpIsA502() {
  RawBackend backend([](net::ip::tcp::socket& s) {
    boost::system::error_code ec;
    net::write(s, net::buffer(std::string("SPEAKING SOMETHING ELSE\r\n\r\n")), ec);
    s.shutdown(net::ip::tcp::socket::shutdown_send, ec);
    RawBackend::waitForClose(s);
  });
  expectErrorThenStillServes(backend, 502);
}

void UpstreamFaultsTest::tenMegabyteHeaderIsA502() {
  RawBackend backend([](net::ip::tcp::socket& s) {
    boost::system::error_code ec;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Huge: ";
    head.append(10 << 20, 'a');
    head += "\r\nContent-Length: 2\r\n\r\n{}";
    net::write(s, net::buffer(head), ec);  // fails part-way once the gateway gives up: fine
    RawBackend::waitForClose(s);
  });
  expectErrorThenStillServes(backend, 502);
}

namespace {

// Chunks until the gateway hangs up (or 1 GiB, far past any limit here).
void sendEndlessChunks(net::ip::tcp::socket& s, const std::string& content_type, const std::string& chunk_payload) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk_payload.size());
  const std::string chunk = size + chunk_payload + "\r\n";
  boost::system::error_code ec;
  net::write(s, net::buffer(head), ec);
  for (size_t sent = 0; !ec && sent < (size_t{1} << 30); sent += chunk.size()) net::write(s, net::buffer(chunk), ec);
}

}  // namespace

void UpstreamFaultsTest::endlessStreamIsCutWithAnErrorEvent() {
  const std::string event =
      R"(data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"raw","choices":[{"index":0,"delta":{"content":"more "},"finish_reason":null}]})"
      "\n\n";
  RawBackend backend([&event](net::ip::tcp::socket& s) { sendEndlessChunks(s, "text/event-stream", event); });
  auto engine = gatewayFor(backend, "  max_response_bytes: 65536\n");
  auto r = streamRequest(engine->port(), "/v1/chat/completions", kRawStream, 30s);
  QCOMPARE(r.status, 200);
  QVERIFY(r.events.size() > 10);  // relayed up to the limit
  QVERIFY(!r.sawDone());
  QVERIFY2(r.events.back().data.find("upstream_response_too_large") != std::string::npos, r.events.back().data.c_str());
  size_t relayed = 0;
  for (const auto& e : r.events) relayed += e.data.size();
  QVERIFY(relayed <= 65536);
  verifyStillServes(*engine);
}

void UpstreamFaultsTest::endlessBodyEndsBrokenNeverComplete() {
  RawBackend backend([](net::ip::tcp::socket& s) { sendEndlessChunks(s, "application/json", std::string(4096, ' ')); });
  auto engine = gatewayFor(backend, "  max_response_bytes: 65536\n");
  auto r = postJson(engine->port(), "/v1/chat/completions", kRaw);
  // The head went out (200, chunked); the body ends without its last chunk:
  // the client sees a broken answer, never a complete one.
  QVERIFY2(!r.error.empty(), "the client must not see a complete answer");
  QVERIFY(r.body.size() <= 65536);
  verifyStillServes(*engine);
}

void UpstreamFaultsTest::announcedHugeBodyIsA502() {
  RawBackend backend([](net::ip::tcp::socket& s) {
    boost::system::error_code ec;
    net::write(s, net::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          "Content-Length: 10737418240\r\n\r\n{\"id\":")), ec);
    RawBackend::waitForClose(s);
  });
  auto engine = gatewayFor(backend, "  max_response_bytes: 65536\n");
  auto r = postJson(engine->port(), "/v1/chat/completions", kRaw);
  QCOMPARE(r.status, 502);
  QVERIFY2(r.body.find("upstream_response_too_large") != std::string::npos, r.body.c_str());
  verifyStillServes(*engine);
}

QTEST_APPLESS_MAIN(UpstreamFaultsTest)
