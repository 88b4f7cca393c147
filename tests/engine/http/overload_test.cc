#include "overload_test.h"

#include <QtTest>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <sys/socket.h>

#include "engine.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;
namespace net = boost::asio;

namespace {

const char* kInstant = R"(  - name: a
    url: sim://a
    models: [small]
    sim: {profile: instant}
)";

// 40 tokens 20 ms apart: a stream in flight for about 0.8 s.
const char* kStreaming = R"(  - name: a
    url: sim://a
    models: [small]
    sim: {profile: instant, inter_token_ms: 20, min_output_tokens: 40, max_output_tokens: 40}
)";

const std::string kChat = R"({"model":"small","max_tokens":4,"messages":[{"role":"user","content":"hi"}]})";
const std::string kStreamChat =
    R"({"model":"small","stream":true,"messages":[{"role":"user","content":"hello"}]})";

std::unique_ptr<Engine> start(const char* backends, const std::string& overload, EngineOptions options = {"", "test", false}) {
  // (engineYaml's server block continues with the overload settings.)
  auto e = Engine::start(configFromYaml(engineYaml(backends, "  overload: " + overload + "\n")), std::move(options));
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

// A raw client connection with a receive timeout (a server that never
// answers fails the test instead of hanging it).
struct Client {
  net::io_context io;
  net::ip::tcp::socket socket{io};
  explicit Client(uint16_t port) {
    socket.connect({net::ip::make_address("127.0.0.1"), port});
    timeval limit{10, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }
  void send(const std::string& bytes) { net::write(socket, net::buffer(bytes)); }
  // Everything until the server closes (or the timeout).
  std::string readAll() {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
      const size_t n = socket.read_some(net::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }
  // Sends `bytes` and reads the one response to them.
  std::string ask(const std::string& bytes) {
    send(bytes);
    return readResponse();
  }
  // One response's head and its Content-Length body.
  std::string readResponse() {
    net::streambuf b;
    boost::system::error_code ec;
    net::read_until(socket, b, "\r\n\r\n", ec);
    std::string head(net::buffers_begin(b.data()), net::buffers_end(b.data()));
    const auto cl = head.find("Content-Length: ");
    if (cl != std::string::npos) {
      const size_t body = std::stoul(head.substr(cl + 16));
      const size_t have = head.size() - head.find("\r\n\r\n") - 4;
      if (body > have) net::read(socket, b, net::transfer_exactly(body - have), ec);
    }
    return std::string(net::buffers_begin(b.data()), net::buffers_end(b.data()));
  }
};

std::vector<std::unique_ptr<Client>> openClients(uint16_t port, int n) {
  std::vector<std::unique_ptr<Client>> out;
  for (int i = 0; i < n; ++i) out.push_back(std::make_unique<Client>(port));
  return out;
}

std::string chatRequest(bool keep_alive = true) {
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         std::string(keep_alive ? "" : "Connection: close\r\n") + "Content-Length: " + std::to_string(kChat.size()) +
         "\r\n\r\n" + kChat;
}

void verifyOverloaded(const std::string& answer, const char* what) {
  QVERIFY2(answer.rfind("HTTP/1.1 503", 0) == 0, answer.c_str());
  QVERIFY2(answer.find("Retry-After: 1") != std::string::npos, answer.c_str());
  QVERIFY2(answer.find("x-spillway-drop-reason: gateway_overloaded") != std::string::npos, answer.c_str());
  QVERIFY2(answer.find("\"code\":\"gateway_overloaded\"") != std::string::npos, answer.c_str());
  QVERIFY2(answer.find(what) != std::string::npos, answer.c_str());
}

}  // namespace

void OverloadTest::connectionLimitRefusesWith503() {
  auto engine = start(kInstant, "{max_connections: 10}");
  auto open = openClients(engine->port(), 10);
  QVERIFY(waitFor([&] { return engine->overload().open_connections == 10; }));

  Client extra(engine->port());
  extra.send(chatRequest());
  verifyOverloaded(extra.readAll(), "server.overload.max_connections");
  QCOMPARE(engine->overload().refused_connections, uint64_t{1});
  QVERIFY(engine->metricsText().find("spillway_overload_refused_total{limit=\"max_connections\"} 1") != std::string::npos);

  // The connections already open are served, but told to close (at 100 %,
  // past the 90 % mark): keep-alive is off until the load drops.
  QVERIFY(engine->overload().keep_alive_off);
  const std::string served = open[0]->ask(chatRequest());
  QVERIFY2(served.rfind("HTTP/1.1 200", 0) == 0, served.c_str());
  QVERIFY2(served.find("Connection: close") != std::string::npos, served.c_str());

  // Below the mark again: new connections are welcome and kept alive.
  open.clear();
  QVERIFY(waitFor([&] { return engine->overload().open_connections == 0; }));
  QVERIFY(!engine->overload().keep_alive_off);
  Client again(engine->port());
  const std::string kept = again.ask(chatRequest());
  QVERIFY2(kept.rfind("HTTP/1.1 200", 0) == 0, kept.c_str());
  QVERIFY2(kept.find("Connection: close") == std::string::npos, kept.c_str());
}

void OverloadTest::perClientLimitCountsOpenConnections() {
  auto engine = start(kInstant, "{max_connections_per_client: 3}");
  auto open = openClients(engine->port(), 3);
  QVERIFY(waitFor([&] { return engine->overload().open_connections == 3; }));
  Client fourth(engine->port());
  fourth.send(chatRequest());
  verifyOverloaded(fourth.readAll(), "server.overload.max_connections_per_client");
  QCOMPARE(engine->overload().refused_per_client, uint64_t{1});
  // One closes: its place is free for the same address.
  open.pop_back();
  QVERIFY(waitFor([&] { return engine->overload().open_connections == 2; }));
  Client next(engine->port());
  const std::string served = next.ask(chatRequest());
  QVERIFY2(served.rfind("HTTP/1.1 200", 0) == 0, served.c_str());
}

void OverloadTest::activeRequestLimitRefusesBeforeTheBody() {
  auto engine = start(kStreaming, "{max_active_requests: 2}");
  auto first = startStream(engine->port(), "/v1/chat/completions", kStreamChat, 60s);
  auto second = startStream(engine->port(), "/v1/chat/completions", kStreamChat, 60s);
  QCOMPARE(engine->overload().active_requests, int64_t{2});
  // A third announces a body it never sends: the answer comes anyway, so it
  // was decided on the headers alone.
  Client third(engine->port());
  third.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 100000\r\n\r\n");
  verifyOverloaded(third.readAll(), "server.overload.max_active_requests");
  QCOMPARE(engine->overload().refused_requests, uint64_t{1});
  // The streams in flight were not touched: both finish whole.
  for (auto* s : {&first, &second}) {
    auto r = s->get();
    QVERIFY(r.complete);
    QVERIFY(r.sawDone());
  }
  QVERIFY(waitFor([&] { return engine->overload().active_requests == 0; }));
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
}

void OverloadTest::memoryBudgetTurnsKeepAliveOffThenRefuses() {
  auto used = std::make_shared<std::atomic<uint64_t>>(100);
  EngineOptions options{"", "test", false};
  options.memory_gauge = [used] { return used->load(); };
  auto engine = start(kInstant, "{memory_budget_bytes: 1000}", std::move(options));
  QVERIFY(waitFor([&] { return engine->overload().memory_bytes == 100; }));
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);

  used->store(950);  // past 90 %: still served, connections closed after each answer
  QVERIFY(waitFor([&] { return engine->overload().keep_alive_off; }));
  Client near(engine->port());
  const std::string served = near.ask(chatRequest());
  QVERIFY2(served.rfind("HTTP/1.1 200", 0) == 0, served.c_str());
  QVERIFY2(served.find("Connection: close") != std::string::npos, served.c_str());

  used->store(1000);  // at the budget: new requests refused
  QVERIFY(waitFor([&] { return engine->overload().memory_bytes == 1000; }));
  Client over(engine->port());
  over.send(chatRequest());
  verifyOverloaded(over.readAll(), "server.overload.memory_budget_bytes");
  QCOMPARE(engine->overload().refused_memory, uint64_t{1});

  used->store(200);  // memory freed: back to normal
  QVERIFY(waitFor([&] { return !engine->overload().keep_alive_off && engine->overload().memory_bytes == 200; }));
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
}

QTEST_APPLESS_MAIN(OverloadTest)
