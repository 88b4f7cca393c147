// The gateway end to end on real loopback sockets: OpenAI endpoints through
// the engine to in-process simulators, streaming and not, with real clients
// (our Beast client, curl, promtool), keep-alive pooling, backpressure and
// graceful drain.
#include "gateway_test.h"

#include <QtTest>

#include <QProcess>
#include <QStandardPaths>
#include <future>
#include <set>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "engine.h"
#include "sim/sim_server.h"
#include "support/json.h"
#include "support/test_config.h"
#include "support/run_tool.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;

namespace {

const char* kTwoBackends = R"(  - name: sim-a
    url: sim://a
    models: [small]
    sim: {profile: instant, min_output_tokens: 12, max_output_tokens: 12}
  - name: sim-b
    url: sim://b
    models: [small, big]
    sim: {profile: instant, min_output_tokens: 12, max_output_tokens: 12}
)";

std::unique_ptr<Engine> startEngine(const std::string& backends, const std::string& extra = "") {
  auto e = Engine::start(configFromYaml(engineYaml(backends, extra)));
  if (!e.ok()) qFatal("engine start failed: %s", std::string(e.status().message()).c_str());
  return std::move(*e);
}

// A keep-alive client with one request answered, its connection left open.
struct IdleClient {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket{io};
  explicit IdleClient(uint16_t port) {
    namespace net = boost::asio;
    socket.connect({net::ip::make_address("127.0.0.1"), port});
    const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    net::write(socket, net::buffer(get));
    net::streambuf head;
    net::read_until(socket, head, std::string("{\"status\":\"ok\"}"));
  }
  // The server closed it (EOF or a reset). Bounded by a 10 s receive
  // timeout: a server that keeps it open fails instead of hanging the test.
  bool closedByServer() {
    timeval limit{10, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    boost::system::error_code ec;
    char byte;
    socket.read_some(boost::asio::buffer(&byte, 1), ec);
    if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) return true;
    qWarning("idle connection: %s", ec ? ec.message().c_str() : "data, not a close");
    return false;
  }
};

const std::string kChat = R"({"model":"small","messages":[{"role":"user","content":"hello"}]})";
const std::string kStreamChat =
    R"({"model":"small","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]})";

}  // namespace

void GatewayTest::listsTheModelsOfEveryPool() {
  auto engine = startEngine(kTwoBackends);
  auto r = httpRequest(engine->port(), "GET", "/v1/models");
  QCOMPARE(r.status, 200);
  auto o = jsonObject(r.body);
  QCOMPARE(str(o["object"]), "list");
  std::set<std::string> ids;
  for (const auto& m : o["data"].toArray()) ids.insert(str(m.toObject()["id"]));
  QCOMPARE(ids, (std::set<std::string>{"big", "small"}));
}

void GatewayTest::nonStreamingCompletion() {
  auto engine = startEngine(kTwoBackends);
  auto r = postJson(engine->port(), "/v1/chat/completions", kChat);
  QCOMPARE(r.status, 200);
  QVERIFY(r.header("x-spillway-backend") == "sim-a" || r.header("x-spillway-backend") == "sim-b");
  QCOMPARE(r.header("content-type"), "application/json");  // relayed from the upstream
  QCOMPARE(r.header("server"), "spillway");
  auto o = jsonObject(r.body);
  QCOMPARE(str(o["object"]), "chat.completion");
  QCOMPARE(o["usage"].toObject()["completion_tokens"].toInt(), 12);
  auto legacy = postJson(engine->port(), "/v1/completions", R"({"model":"big","prompt":"hi","max_tokens":4})");
  QCOMPARE(legacy.status, 200);
  QCOMPARE(legacy.header("x-spillway-backend"), "sim-b");
  QCOMPARE(jsonObject(legacy.body)["usage"].toObject()["completion_tokens"].toInt(), 4);
}

void GatewayTest::streamingCompletion() {
  auto engine = startEngine(kTwoBackends);
  auto r = streamRequest(engine->port(), "/v1/chat/completions", kStreamChat);
  QCOMPARE(r.status, 200);
  QVERIFY(r.complete);
  QVERIFY(r.sawDone());
  QVERIFY(!r.headers["x-spillway-backend"].empty());
  QCOMPARE(r.headers["content-type"], "text/event-stream");
  QCOMPARE(r.events.size(), size_t{1 + 12 + 1 + 1 + 1});
  std::string text;
  for (size_t i = 1; i <= 12; ++i) {
    text += str(jsonObject(r.events[i].data)["choices"].toArray()[0].toObject()["delta"].toObject()["content"]);
  }
  auto usage = jsonObject(r.events[14].data)["usage"].toObject();
  QCOMPARE(usage["completion_tokens"].toInt(), 12);
  QVERIFY(!text.empty());
}

void GatewayTest::roundRobinSpreadsRequests() {
  auto engine = startEngine(kTwoBackends, "upstream:\n  balancing: {policy: round_robin}\n");
  std::map<std::string, int> by_backend;
  for (int i = 0; i < 6; ++i) by_backend[postJson(engine->port(), "/v1/chat/completions", kChat).header("x-spillway-backend")]++;
  QCOMPARE(by_backend["sim-a"], 3);
  QCOMPARE(by_backend["sim-b"], 3);
}

void GatewayTest::keepAliveReusesUpstreamConnections() {
  auto engine = startEngine(kTwoBackends);
  const std::string body = R"({"model":"big","prompt":"x"})";
  for (int i = 0; i < 20; ++i) QCOMPARE(postJson(engine->port(), "/v1/completions", body).status, 200);
  // Sequential requests: at most one connection per worker thread (2).
  auto m = engine->metricsText();
  auto line = m.find("spillway_upstream_connects_total{backend=\"sim-b\",result=\"ok\"} ");
  QVERIFY(line != std::string::npos);
  int connects = std::stoi(m.substr(line + std::string("spillway_upstream_connects_total{backend=\"sim-b\",result=\"ok\"} ").size()));
  QVERIFY2(connects <= 2, qPrintable(QString("connects: %1").arg(connects)));
  // The connection goes back to the pool just after the answer is written.
  QCOMPARE(engine->backends()[1].name, "sim-b");
  QVERIFY(waitFor([&] { return engine->backends()[1].idle_connections >= 1; }));
}

void GatewayTest::curlGetsStreamingAndNonStreamingAnswers() {
  const QString curl = QStandardPaths::findExecutable("curl");
  QVERIFY2(!curl.isEmpty(), "curl is installed by installer/debian-deps.sh");
  auto engine = startEngine(kTwoBackends);
  const QString url = QString::fromStdString(engine->url()) + "/v1/chat/completions";
  int code = 0;
  auto plain = runTool(curl, {"-sS", "--fail-with-body", "-H", "Content-Type: application/json", "-d",
                              QString::fromStdString(kChat), url}, {}, &code);
  QCOMPARE(code, 0);
  QCOMPARE(str(jsonObject(plain)["object"]), "chat.completion");
  auto streamed = runTool(curl, {"-sS", "-N", "--fail-with-body", "-H", "Content-Type: application/json", "-d",
                                 QString::fromStdString(kStreamChat), url}, {}, &code);
  QCOMPARE(code, 0);
  auto events = sseData(streamed);
  QVERIFY(events.size() > 12);
  QCOMPARE(events.back(), "[DONE]");
}

void GatewayTest::healthAndReadiness() {
  auto engine = startEngine(kTwoBackends);
  auto h = httpRequest(engine->port(), "GET", "/healthz");
  QCOMPARE(h.status, 200);
  auto r = httpRequest(engine->port(), "GET", "/readyz");
  QCOMPARE(r.status, 200);
  QCOMPARE(str(jsonObject(r.body)["backends"].toObject()["sim-a"]), "up");
}

void GatewayTest::metricsAreValidPrometheusText() {
  const QString promtool = QStandardPaths::findExecutable("promtool");
  QVERIFY2(!promtool.isEmpty(), "promtool is installed by installer/debian-deps.sh");
  // Round robin, so the two completions land on sim-a then sim-b.
  auto engine = startEngine(kTwoBackends, "upstream:\n  balancing: {policy: round_robin}\n");
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
  QCOMPARE(streamRequest(engine->port(), "/v1/chat/completions", kStreamChat).status, 200);
  const std::string invalid = R"({"model":"nope","messages":[]})";
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", invalid).status, 400);
  // A request is counted just after its answer is written: wait for all three.
  QVERIFY(waitFor([&] { return engine->totals().requests == 3; }));
  auto m = httpRequest(engine->port(), "GET", "/metrics");
  QCOMPARE(m.status, 200);
  QVERIFY(m.header("content-type").find("text/plain; version=0.0.4") == 0);
  int code = 0;
  auto out = runTool(promtool, {"check", "metrics"}, QByteArray::fromStdString(m.body), &code);
  QVERIFY2(code == 0, out.c_str());
  QVERIFY(m.body.find("spillway_requests_total{route=\"chat_completions\",model=\"small\",backend=\"sim-a\",code=\"200\"} 1") != std::string::npos);
  QVERIFY(m.body.find("spillway_requests_total{route=\"chat_completions\",model=\"\",backend=\"\",code=\"400\"} 1") != std::string::npos);
  QVERIFY(m.body.find("spillway_time_to_first_token_seconds_count{model=\"small\",backend=\"sim-b\"} 1") != std::string::npos);
  QVERIFY(m.body.find("spillway_backend_up{backend=\"sim-a\"} 1") != std::string::npos);
  QVERIFY(m.body.find("spillway_upstream_connections{backend=\"sim-a\",state=\"idle\"}") != std::string::npos);
  // Every family the README lists is on the wire.
  for (const char* family :
       {"spillway_requests_total", "spillway_requests_in_flight", "spillway_request_duration_seconds",
        "spillway_time_to_first_token_seconds", "spillway_upstream_connects_total", "spillway_upstream_retries_total",
        "spillway_backend_up", "spillway_backend_state", "spillway_backend_weight", "spillway_backend_in_flight",
        "spillway_backend_latency_ewma_seconds", "spillway_backend_latency_per_token_ewma_seconds",
        "spillway_backend_ejections", "spillway_backend_back_offs", "spillway_backend_consecutive_failures",
        "spillway_backend_policy_score", "spillway_upstream_connections"}) {
    QVERIFY2(m.body.find(std::string("# TYPE ") + family + " ") != std::string::npos, family);
  }
}

void GatewayTest::metricsListenerKeepsMetricsFromApiClients() {
  // server.metrics_listen: /metrics moves to its own listener.
  auto engine = startEngine(kTwoBackends, "  metrics_listen: 127.0.0.1:0\n");
  QVERIFY(engine->metricsPort() != 0);
  QVERIFY(engine->metricsPort() != engine->port());
  QCOMPARE(postJson(engine->port(), "/v1/chat/completions", kChat).status, 200);
  QVERIFY(waitFor([&] { return engine->totals().requests == 1; }));
  auto m = httpRequest(engine->metricsPort(), "GET", "/metrics");
  QCOMPARE(m.status, 200);
  QVERIFY(m.body.find("spillway_requests_total{route=\"chat_completions\",model=\"small\"") != std::string::npos);
  // Probes on both; the API and /v1/models only on the front.
  QCOMPARE(httpRequest(engine->metricsPort(), "GET", "/healthz").status, 200);
  QCOMPARE(httpRequest(engine->metricsPort(), "GET", "/readyz").status, 200);
  QCOMPARE(httpRequest(engine->port(), "GET", "/healthz").status, 200);
  auto api = postJson(engine->metricsPort(), "/v1/chat/completions", kChat);
  QCOMPARE(api.status, 404);
  QVERIFY2(api.body.find("server.metrics_listen") != std::string::npos, api.body.c_str());
  QCOMPARE(httpRequest(engine->metricsPort(), "GET", "/v1/models").status, 404);
  auto front = httpRequest(engine->port(), "GET", "/metrics");
  QCOMPARE(front.status, 404);
  QVERIFY2(front.body.find("server.metrics_listen") != std::string::npos, front.body.c_str());
  // An apply that drops it brings /metrics back to the front.
  v1::Config next = engine->config();
  next.mutable_server()->clear_metrics_listen();
  QVERIFY(engine->applyConfig(next, ChangeRequest{"test", "metrics back on the front"}).ok());
  QCOMPARE(engine->metricsPort(), uint16_t{0});
  QCOMPARE(httpRequest(engine->port(), "GET", "/metrics").status, 200);
}

void GatewayTest::headersOnTheWireBothWays() {
  // A raw upstream: records one request, answers with a fixed response.
  // It runs on its own io_context for at most 10 s, so the test cannot hang.
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
  const uint16_t upstream_port = acceptor.local_endpoint().port();
  std::string up;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::ip::tcp::socket s = co_await acceptor.async_accept(net::use_awaitable);
        net::streambuf buf;
        const std::string_view end_of_head = "\r\n\r\n";
        const size_t head_len = co_await net::async_read_until(s, buf, end_of_head, net::use_awaitable);
        std::string head{net::buffers_begin(buf.data()), net::buffers_begin(buf.data()) + static_cast<long>(head_len)};
        const auto at = head.find("Content-Length: ");
        const size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 16));
        if (buf.size() < head_len + length) {
          co_await net::async_read(s, buf, net::transfer_exactly(head_len + length - buf.size()), net::use_awaitable);
        }
        up.assign(net::buffers_begin(buf.data()), net::buffers_end(buf.data()));
        const std::string answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            "X-Internal: secret\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        co_await net::async_write(s, net::buffer(answer), net::use_awaitable);
      },
      net::detached);
  std::thread upstream([&] { io.run_for(std::chrono::seconds(10)); });
  auto engine = startEngine("  - name: wire\n    url: http://127.0.0.1:" + std::to_string(upstream_port) +
                            "/prefix\n    models: [small]\n    api_key: sk-wire\n    health_check: {path: none}\n");
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAccept: application/json\r\n"
                              "Connection: close\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(kChat.size()) + "\r\n\r\n" + kChat;
  auto raw = rawExchange(engine->port(), request);
  upstream.join();
  QVERIFY2(up.rfind("POST /prefix/v1/chat/completions HTTP/1.1\r\n", 0) == 0, up.c_str());
  for (const std::string& line : {"Host: 127.0.0.1:" + std::to_string(upstream_port), std::string("Authorization: Bearer sk-wire"),
                                  std::string("Accept: application/json"), std::string("Content-Type: application/json"),
                                  "Content-Length: " + std::to_string(kChat.size())}) {
    QVERIFY2(up.find("\r\n" + line + "\r\n") != std::string::npos, (line + " missing in:\n" + up).c_str());
  }
  QVERIFY2(up.size() >= kChat.size() && up.substr(up.size() - kChat.size()) == kChat, up.c_str());

  const std::string& got = raw.received;
  QVERIFY2(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, got.c_str());
  for (const char* line : {"Cache-Control: no-store", "Content-Type: application/json", "x-spillway-backend: wire",
                           "Connection: close", "Content-Length: 11", "Server: spillway"}) {
    QVERIFY2(got.find(std::string("\r\n") + line + "\r\n") != std::string::npos, (std::string(line) + " missing in:\n" + got).c_str());
  }
  QVERIFY2(got.find("X-Internal") == std::string::npos, got.c_str());
  QVERIFY2(got.size() > 11 && got.substr(got.size() - 15) == "\r\n\r\n{\"ok\":true}", got.c_str());
  QVERIFY(!raw.timed_out);  // Connection: close was honoured
}

void GatewayTest::slowReaderBackpressuresTheUpstream() {
  constexpr int kTokens = 400000;  // ~80 MB of SSE, far beyond socket buffers
  auto engine = startEngine(std::string(R"(  - name: big
    url: sim://big
    models: [small]
    sim: {profile: instant, min_output_tokens: )") + std::to_string(kTokens) +
                                ", max_output_tokens: " + std::to_string(kTokens) + "}\n");
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket sock(ioc);
  sock.open(net::ip::tcp::v4());
  sock.set_option(net::socket_base::receive_buffer_size(16 * 1024));
  sock.connect({net::ip::make_address("127.0.0.1"), engine->port()});
  std::string body = R"({"model":"small","stream":true,"messages":[{"role":"user","content":"go"}]})";
  std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  net::write(sock, net::buffer(req));
  net::streambuf head;
  net::read_until(sock, head, "\r\n\r\n");

  auto sim = engine->simulator("big");
  // Stop reading. Generation must stall well short of the whole answer.
  auto generated = [&] { return sim->counters().generated_tokens; };
  // Stalled = no new token for 300 ms. Bounded: gives up after ~30 s.
  uint64_t stalled_at = 0;
  bool stalled = false;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!stalled && std::chrono::steady_clock::now() < give_up) {
    uint64_t now = generated();
    stalled = now > 0 && !waitFor([&] { return generated() != now; }, 300ms);
    stalled_at = now;
  }
  QVERIFY(stalled);
  // A scheduler pause also looks like 300 ms without a token: a real stall
  // stays put. Without backpressure, generation would run on to the end.
  QVERIFY2(!waitFor([&] { return generated() != stalled_at; }, 2s),
           qPrintable(QString("generation went on from %1 tokens").arg(stalled_at)));
  qInfo("upstream stalled after %llu of %d tokens", static_cast<unsigned long long>(stalled_at), kTokens);
  QVERIFY2(stalled_at < kTokens / 4,
           qPrintable(QString("generated %1 of %2 tokens with the client not reading").arg(stalled_at).arg(kTokens)));

  // Now read everything: the stream completes with [DONE].
  std::string tail;
  boost::system::error_code ec;
  char buf[65536];
  while (tail.find("data: [DONE]") == std::string::npos) {
    size_t n = sock.read_some(net::buffer(buf), ec);
    if (ec) break;
    tail.append(buf, n);
    if (tail.size() > 4096) tail.erase(0, tail.size() - 4096);
  }
  QVERIFY(tail.find("data: [DONE]") != std::string::npos);
  QCOMPARE(generated(), uint64_t{kTokens});
}

void GatewayTest::drainLetsInFlightStreamsFinish() {
  auto engine = startEngine(R"(  - name: slowish
    url: sim://s
    models: [small]
    sim: {profile: instant, inter_token_ms: 20, min_output_tokens: 150, max_output_tokens: 150}
)");
  auto stream = startStream(engine->port(), "/v1/chat/completions", kStreamChat, 60s);
  // The stream has ~3 s to go: it is in flight when the drain begins.
  QCOMPARE(engine->totals().in_flight, int64_t(1));
  QVERIFY(engine->drain(30s));
  auto r = stream.get();
  QVERIFY(r.complete);
  QVERIFY(r.sawDone());
  QCOMPARE(r.events.size(), size_t{1 + 150 + 1 + 1 + 1});  // nothing cut short
  // No longer accepting.
  auto after = httpRequest(engine->port(), "GET", "/healthz", "", {}, 2s);
  QCOMPARE(after.status, 0);
}

void GatewayTest::drainClosesIdleConnectionsAndCutsAtItsTimeout() {
  auto engine = startEngine(R"(  - name: endless
    url: sim://e
    models: [small]
    sim: {profile: instant, inter_token_ms: 20, min_output_tokens: 100000, max_output_tokens: 100000}
)");
  // An idle keep-alive client: one answered request, connection left open.
  IdleClient idle(engine->port());
  // A stream that would never end by itself.
  auto stream = startStream(engine->port(), "/v1/chat/completions", kStreamChat, 60s);
  QCOMPARE(engine->totals().in_flight, int64_t(1));
  QVERIFY(!engine->drain(300ms));  // timed out with the stream still running
  // The idle connection was closed by the drain (EOF, not a timeout).
  QVERIFY(idle.closedByServer());
  // What spillwayd does at drain_timeout_ms: stop, cutting what still runs.
  engine.reset();
  auto r = stream.get();
  QVERIFY(!r.complete);
  QVERIFY(!r.sawDone());
}

void GatewayTest::stopClosesClientConnectionsOfAnEngineKeptAlive() {
  auto engine = startEngine(R"(  - name: endless
    url: sim://e
    models: [small]
    sim: {profile: instant, inter_token_ms: 20, min_output_tokens: 100000, max_output_tokens: 100000}
)");
  // A stream that would never end by itself, and an idle keep-alive client.
  auto stream = startStream(engine->port(), "/v1/chat/completions", kStreamChat, 120s);
  IdleClient idle(engine->port());

  // An embedding caller (the console) stops the engine but keeps the object.
  engine->stop();
  // The stream's connection ended: its client is not left waiting until the
  // engine is destroyed (or its own 120 s timeout: the wait below is far
  // shorter, and only guards against a hang).
  QCOMPARE(stream.wait_for(60s), std::future_status::ready);
  auto r = stream.get();
  QVERIFY(!r.complete);
  QVERIFY(!r.sawDone());
  QVERIFY2(r.error.find("timeout") == std::string::npos, r.error.c_str());
  QVERIFY(idle.closedByServer());
  // Nothing is accepted any more; the engine object still answers its callers.
  QCOMPARE(httpRequest(engine->port(), "GET", "/healthz", "", {}, 2s).status, 0);
  QCOMPARE(engine->backends().size(), size_t{1});
}

QTEST_APPLESS_MAIN(GatewayTest)
