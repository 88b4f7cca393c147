#include "http/front_server.h"

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <list>
#include <unordered_map>
#include <unistd.h>
#include <optional>

#include "common/asio_types.h"
#include "common/coarse_deadline.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "common/url.h"
#include "http/client_stream.h"
#include "http/framing.h"
#include "http/responses.h"
#include "http/tls_context.h"

namespace spillway::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

// A connection as the drain logic sees it; lives in its worker's list and is
// touched on that worker's thread only.
struct SessionEntry {
  ClientStream* stream = nullptr;
  bool idle = true;  // waiting for the next request's headers
  std::string client;  // counted under max_connections_per_client ("" when not)
};

// /proc/self/statm's resident pages, in bytes.
uint64_t residentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// The front door's TLS as it stands: the context new connections get (null
// for plain HTTP) and what it was made from.
struct TlsState {
  v1::ServerTls settings;
  FrontTlsContext made;
  std::string stamp;  // tlsFilesStamp() when it was made
  int64_t reloaded_unix = 0;
};

int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct FrontServer::Shared {
  Shared(common::IoPool& io_pool, Gateway& gw, v1::Server s, FrontServer::Role r)
      : io(io_pool), gateway(gw), role(r), server(std::make_shared<const v1::Server>(std::move(s))),
        acceptor(io_pool.context(0)), sessions(io_pool.size()) {}

  common::IoPool& io;
  Gateway& gateway;
  const FrontServer::Role role;
  std::atomic<std::shared_ptr<const v1::Server>> server;  // swapped whole on reload
  common::TcpAcceptor acceptor;  // used on context 0 only
  std::atomic<bool> draining{false};
  std::vector<std::list<SessionEntry>> sessions;  // per worker, that worker's thread only

  common::Mutex mu;
  common::CondVar closed_cv;  // signalled when open_ drops to 0
  std::atomic<int64_t> open{0};

  // server.overload: what is in use, and what was turned away.
  std::atomic<int64_t> active{0};  // requests past their headers, not yet answered
  std::atomic<int64_t> refusing{0};  // refused connections still being answered
  std::atomic<uint64_t> memory{0};
  std::atomic<bool> memory_high{false}, memory_over{false};
  std::atomic<uint64_t> refused_connections{0}, refused_per_client{0}, refused_requests{0}, refused_memory{0};
  std::function<uint64_t()> memory_gauge = residentBytes;
  common::SteadyTimer memory_timer{io.context(0)};
  bool memory_watching = false;  // context 0 only: the memory timer runs
  common::Mutex clients_mu;
  std::unordered_map<std::string, int64_t> per_client ABSL_GUARDED_BY(clients_mu);

  // server.tls: swapped whole when the config or the files change;
  // connections keep the one they started with.
  std::atomic<std::shared_ptr<const TlsState>> tls;
  std::atomic<uint64_t> tls_handshake_failures{0}, tls_reloads{0}, tls_reload_failures{0};
  std::chrono::steady_clock::time_point tls_checked;  // context 0 only: the files' last look
  common::Mutex tls_mu;  // serialises reloads (config applies and the file check)
  std::string tls_last_error ABSL_GUARDED_BY(tls_mu);
  std::string tls_failed_stamp ABSL_GUARDED_BY(tls_mu);  // the files that failed, not retried until they change

  // Makes the context for `settings` (or none when they name no
  // certificate) and swaps it in. On an error the one in use stays.
  absl::Status reloadTls(const v1::ServerTls& settings, bool force) {
    common::MutexLock lock(tls_mu);
    const auto current = tls.load();
    if (settings.cert_file().empty()) {
      tls.store(nullptr);
      tls_last_error.clear();
      return absl::OkStatus();
    }
    std::string stamp = tlsFilesStamp(settings);
    const bool same_settings = current && current->settings.SerializeAsString() == settings.SerializeAsString();
    if (!force && same_settings && current->stamp == stamp) return absl::OkStatus();
    if (!force && same_settings && stamp == tls_failed_stamp) return absl::OkStatus();  // reported when it failed
    auto made = makeFrontTlsContext(settings);
    if (!made.ok()) {
      tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
      tls_last_error = std::string(made.status().message());
      tls_failed_stamp = std::move(stamp);
      return made.status();
    }
    auto next = std::make_shared<TlsState>();
    next->settings = settings;
    next->made = std::move(*made);
    next->stamp = std::move(stamp);
    next->reloaded_unix = unixNow();
    if (current) {
      tls_reloads.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("front TLS: certificate {} loaded (expires {})", next->made.subject, next->made.not_after_text);
    }
    tls.store(std::move(next));
    tls_last_error.clear();
    tls_failed_stamp.clear();
    return absl::OkStatus();
  }

  // At most once a second, on accept: a certificate or key file replaced
  // (a renewal) is loaded for the connections that follow.
  void checkTlsFiles() {
    const auto current = tls.load();
    if (!current) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - tls_checked < std::chrono::seconds(1)) return;
    tls_checked = now;
    if (auto st = reloadTls(current->settings, false); !st.ok()) {
      spdlog::error("front TLS: keeping the certificate in use: {}", std::string(st.message()));
    }
  }

  // Answers should close their connection: a limit is near.
  bool keepAliveOff(const v1::Overload& o) const {
    return memory_high.load(std::memory_order_relaxed) ||
           (o.max_connections() && open.load(std::memory_order_relaxed) * 10 >= int64_t{o.max_connections()} * 9);
  }
  void clientClosed(const std::string& client) {
    if (client.empty()) return;
    common::MutexLock lock(clients_mu);
    if (auto it = per_client.find(client); it != per_client.end() && --it->second <= 0) per_client.erase(it);
  }

  void connectionClosed() {
    if (open.fetch_sub(1) == 1) {
      common::MutexLock lock(mu);
      closed_cv.notify_all();
    }
  }
};

namespace {

using Shared = FrontServer::Shared;

common::Awaitable<void> rejectAndClose(Shared& sh, ClientStream& stream, openai::ApiError e) {
  sh.gateway.countRejected(e.status);
  stream.expires_after(std::chrono::seconds(5));
  co_await writeApiError(stream, e, false);
}

openai::ApiError overloaded(std::string message) {
  return openai::ApiError{503, std::move(message), "server_error", "", "gateway_overloaded"};
}
constexpr std::string_view kOverloadedHeader = "x-spillway-drop-reason: gateway_overloaded\r\n";

// A connection past the limits: told so (503, Retry-After) and closed. The
// request is not read: after the answer the socket's sending side shuts and
// what the client still sends is drained for at most a second, so the
// answer is not lost to a reset.
common::Awaitable<void> refuseConnection(std::shared_ptr<Shared> sh, common::TcpSocket socket, std::string message,
                                         std::shared_ptr<const TlsState> tls) {
  ClientStream stream(std::move(socket));
  const uint32_t retry_after = sh->server.load()->retry_after_seconds();
  if (tls) {
    stream.useTls(tls->made.context);
    const boost::system::error_code handshake = co_await stream.handshake(std::chrono::seconds(1));
    if (handshake) {
      stream.close();
      sh->refusing.fetch_sub(1);
      co_return;
    }
  }
  sh->gateway.countRejected(503);
  stream.expires_after(std::chrono::seconds(1));
  // Named locals, not temporaries in the co_await (see responses.h).
  openai::ApiError error = overloaded(std::move(message));
  const ExtraHeaders extra{.retry_after_seconds = retry_after, .lines = kOverloadedHeader};
  co_await writeApiError(stream, std::move(error), false, extra);
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  char sink[4096];
  for (;;) {
    stream.expires_after(std::chrono::seconds(1));
    co_await stream.async_read_some(net::buffer(sink), net::redirect_error(common::kUseAwaitable, ec));
    if (ec) break;
  }
  stream.close();
  sh->refusing.fetch_sub(1);
}

common::Awaitable<void> session(std::shared_ptr<Shared> sh, size_t worker, common::TcpSocket socket, std::string client,
                                std::shared_ptr<const TlsState> tls) {
  ClientStream stream(std::move(socket));
  auto& list = sh->sessions[worker];
  auto entry = list.insert(list.end(), SessionEntry{&stream, true, std::move(client)});
  beast::flat_buffer buffer;
  // Read deadlines cancel the pending read instead of closing the socket
  // (as common::TcpStream's own timeouts do), so that a client too slow to
  // send its request can still be told so with a 408; coarse, so that
  // arming one per request costs no system call.
  common::CoarseDeadline deadline(stream.socket());

  bool open = true;
  if (tls) {
    // The handshake is part of the first request's header time.
    stream.useTls(tls->made.context);
    tls.reset();
    const boost::system::error_code handshake =
        co_await stream.handshake(std::chrono::milliseconds(sh->server.load()->header_timeout_ms()));
    if (handshake) {
      sh->tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("front TLS: handshake failed: {}", handshake.message());
      open = false;
    }
  }

  while (open) {
    if (sh->draining.load()) break;
    const std::shared_ptr<const v1::Server> cfg_ptr = sh->server.load();  // this request's limits
    const v1::Server& cfg = *cfg_ptr;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(cfg.max_header_bytes());
    parser.body_limit(cfg.max_body_bytes());
    deadline.expiresAfter(std::chrono::milliseconds(cfg.header_timeout_ms()));
    entry->idle = true;
    boost::system::error_code ec;
    co_await bhttp::async_read_header(stream, buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
    entry->idle = false;
    deadline.disarm();
    deadline.nameTimeout(ec);
    // Errors we answer before closing. Named, not a temporary in the
    // co_await expression: GCC 12 may destroy such temporaries twice.
    std::optional<openai::ApiError> reject;
    if (ec) {
      const bool started = parser.got_some() || buffer.size() > 0;
      if (ec == beast::error::timeout && started) {
        reject = openai::ApiError{408, "The request headers did not arrive in time.", "invalid_request_error", "", "request_timeout"};
      } else if (ec == bhttp::error::header_limit) {
        reject = openai::ApiError{431, common::strCat("Request headers exceed ", cfg.max_header_bytes(), " bytes."), "invalid_request_error", "", "headers_too_large"};
      } else if (ec == bhttp::error::body_limit) {
        reject = openai::ApiError{413, common::strCat("Request body exceeds ", cfg.max_body_bytes(), " bytes."), "invalid_request_error", "", "body_too_large"};
      } else if (started && ec != bhttp::error::end_of_stream && ec != net::error::eof &&
                 ec != net::error::operation_aborted && ec != beast::error::timeout) {
        reject = openai::ApiError{400, common::strCat("Malformed HTTP request: ", ec.message(), "."), "invalid_request_error", "", "bad_request"};
      }
      if (reject) co_await rejectAndClose(*sh, stream, std::move(*reject));
      break;  // idle timeout, client closed, or answered above
    }

    const auto& head = parser.get();
    // Request smuggling guard (http/framing.h).
    if (ambiguousFraming(head)) {
      reject = openai::ApiError{400, "Conflicting Content-Length and Transfer-Encoding headers.", "invalid_request_error", "", "bad_request"};
      co_await rejectAndClose(*sh, stream, std::move(*reject));
      break;
    }
    // The gateway's own limits, before the body is read.
    const v1::Overload& ov = cfg.overload();
    if (ov.max_active_requests() && sh->active.load(std::memory_order_relaxed) >= int64_t{ov.max_active_requests()}) {
      sh->refused_requests.fetch_add(1, std::memory_order_relaxed);
      reject = overloaded(common::strCat("The gateway is handling its limit of ", ov.max_active_requests(),
                                         " requests (server.overload.max_active_requests). Please retry shortly."));
    } else if (sh->memory_over.load(std::memory_order_relaxed)) {
      sh->refused_memory.fetch_add(1, std::memory_order_relaxed);
      reject = overloaded("The gateway is at its memory budget (server.overload.memory_budget_bytes). Please retry shortly.");
    }
    if (reject) {
      sh->gateway.countRejected(503);
      stream.expires_after(std::chrono::seconds(5));
      const ExtraHeaders extra{.retry_after_seconds = cfg.retry_after_seconds(), .lines = kOverloadedHeader};
      co_await writeApiError(stream, std::move(*reject), false, extra);
      break;
    }
    sh->active.fetch_add(1, std::memory_order_relaxed);
    struct Active {
      Shared& sh;
      ~Active() { sh.active.fetch_sub(1, std::memory_order_relaxed); }
    } active{*sh};
    if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      co_await bhttp::async_write(stream, cont, net::redirect_error(common::kUseAwaitable, ec));
      if (ec) break;
    }
    // Small bodies usually arrived with the headers; only a body still on
    // the wire needs a deadline (saves a timer per request).
    const auto body_length = parser.content_length();
    const bool buffered = parser.is_done() || (body_length && buffer.size() >= *body_length);
    if (!buffered) deadline.expiresAfter(std::chrono::milliseconds(cfg.body_timeout_ms()));
    co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
    if (!buffered) deadline.disarm();
    deadline.nameTimeout(ec);
    if (ec) {
      if (ec == beast::error::timeout) {
        reject = openai::ApiError{408, "The request body did not arrive in time.", "invalid_request_error", "", "request_timeout"};
      } else if (ec == bhttp::error::body_limit) {
        reject = openai::ApiError{413, common::strCat("Request body exceeds ", cfg.max_body_bytes(), " bytes."), "invalid_request_error", "", "body_too_large"};
      } else if (ec != net::error::eof && ec != bhttp::error::end_of_stream &&
                 ec != bhttp::error::partial_message) {
        reject = openai::ApiError{400, common::strCat("Malformed HTTP request body: ", ec.message(), "."), "invalid_request_error", "", "bad_request"};
      }
      if (reject) co_await rejectAndClose(*sh, stream, std::move(*reject));
      break;
    }
    stream.expires_never();
    Request req = parser.release();
    const bool keep_alive = req.keep_alive() && !sh->draining.load() && !sh->keepAliveOff(ov);
    const Gateway::Scope scope{.api = sh->role == FrontServer::Role::kFront,
                               .metrics = sh->role == FrontServer::Role::kMetrics || cfg.metrics_listen().empty()};
    if (!co_await sh->gateway.handle(worker, stream, req, keep_alive, scope)) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
  sh->clientClosed(entry->client);
  list.erase(entry);
  sh->connectionClosed();
}

common::Awaitable<void> acceptLoop(std::shared_ptr<Shared> sh) {
  for (;;) {
    const size_t worker = sh->io.nextIndex();
    boost::system::error_code ec;
    common::TcpSocket socket =
        co_await sh->acceptor.async_accept(sh->io.context(worker), net::redirect_error(common::kUseAwaitable, ec));
    if (ec) {
      if (ec == net::error::operation_aborted || !sh->acceptor.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    if (sh->draining.load()) continue;  // closes the socket
    socket.set_option(tcp::no_delay(true), ec);
    // server.overload: the connection limits, checked here (this one
    // coroutine accepts), answered on the connection's worker.
    const std::shared_ptr<const v1::Server> cfg = sh->server.load();
    const v1::Overload& ov = cfg->overload();
    std::string refusal, client;
    if (ov.max_connections() && sh->open.load() >= int64_t{ov.max_connections()}) {
      sh->refused_connections.fetch_add(1, std::memory_order_relaxed);
      refusal = common::strCat("The gateway is at its limit of ", ov.max_connections(),
                               " client connections (server.overload.max_connections). Please retry shortly.");
    } else if (ov.max_connections_per_client()) {
      const auto remote = socket.remote_endpoint(ec);
      if (!ec) client = remote.address().to_string();
      common::MutexLock lock(sh->clients_mu);
      int64_t& n = sh->per_client[client];
      if (n >= int64_t{ov.max_connections_per_client()}) {
        sh->refused_per_client.fetch_add(1, std::memory_order_relaxed);
        refusal = common::strCat("This client address has its limit of ", ov.max_connections_per_client(),
                                 " connections open (server.overload.max_connections_per_client).");
        if (n == 0) sh->per_client.erase(client);
        client.clear();
      } else {
        ++n;
      }
    }
    sh->checkTlsFiles();
    if (!refusal.empty()) {
      // Bounded: past a thousand refusals still being answered, close at once.
      if (sh->refusing.fetch_add(1) >= 1000) {
        sh->refusing.fetch_sub(1);
        continue;  // closes the socket
      }
      net::co_spawn(sh->io.context(worker), refuseConnection(sh, std::move(socket), std::move(refusal), sh->tls.load()),
                    net::detached);
      continue;
    }
    sh->open.fetch_add(1);
    net::co_spawn(sh->io.context(worker), session(sh, worker, std::move(socket), std::move(client), sh->tls.load()),
                  net::detached);
  }
}

}  // namespace

namespace {
void startMemoryWatch(const std::shared_ptr<Shared>& sh);
}  // namespace

namespace {

// The metrics listener's settings: the front's limits and timeouts on
// server.metrics_listen, never TLS.
v1::Server forRole(v1::Server server, FrontServer::Role role) {
  if (role == FrontServer::Role::kMetrics) {
    server.set_listen(server.metrics_listen());
    server.clear_tls();
  }
  return server;
}

}  // namespace

FrontServer::FrontServer(common::IoPool& io, Gateway& gateway, v1::Server server, Role role)
    : shared_(std::make_shared<Shared>(io, gateway, forRole(std::move(server), role), role)) {}

int64_t FrontServer::openConnections() const { return shared_->open.load(); }

FrontServer::~FrontServer() {
  if (!shared_->draining.load()) drain(std::chrono::milliseconds(0));
}

void FrontServer::setServerConfig(v1::Server server) {
  server = forRole(std::move(server), shared_->role);
  const bool budget = server.overload().memory_budget_bytes() > 0;
  // A reload (SIGHUP, an apply) reads the certificate files again.
  if (auto st = shared_->reloadTls(server.tls(), /*force=*/true); !st.ok()) {
    spdlog::error("front TLS: keeping the certificate in use: {}", std::string(st.message()));
  }
  shared_->server.store(std::make_shared<const v1::Server>(std::move(server)));
  if (budget) startMemoryWatch(shared_);
}

absl::Status FrontServer::start() {
  auto hp = common::parseHostPort(shared_->server.load()->listen());
  if (!hp.ok()) return hp.status();
  if (auto st = shared_->reloadTls(shared_->server.load()->tls(), /*force=*/true); !st.ok()) return st;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(hp->host, ec);
  if (ec) {
    // A host name: resolve it once at start-up.
    common::TcpResolver resolver(shared_->io.context(0));
    auto results = resolver.resolve(hp->host, std::to_string(hp->port), ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(common::strCat("cannot resolve listen host \"", hp->host, "\""));
    }
    addr = results.begin()->endpoint().address();
  }
  tcp::endpoint ep(addr, hp->port);
  auto& a = shared_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(common::strCat("cannot listen on ", shared_->server.load()->listen(), ": ", ec.message()));
  }
  port_ = a.local_endpoint().port();
  net::co_spawn(shared_->io.context(0), acceptLoop(shared_), net::detached);
  if (shared_->server.load()->overload().memory_budget_bytes()) startMemoryWatch(shared_);
  return absl::OkStatus();
}

namespace {

// Every 100 ms while a memory budget is set: the process's memory against
// it. Runs on context 0 only; without a budget no timer runs at all (a
// config apply that sets one starts it).
void watchMemory(std::shared_ptr<Shared> sh) {
  const uint64_t budget = sh->server.load()->overload().memory_budget_bytes();
  if (!budget || sh->draining.load()) {
    sh->memory_over.store(false);
    sh->memory_high.store(false);
    sh->memory_watching = false;
    return;
  }
  const uint64_t used = sh->memory_gauge();
  sh->memory.store(used, std::memory_order_relaxed);
  const bool over = used >= budget, high = used * 10 >= budget * 9;
  if (over != sh->memory_over.exchange(over)) {
    if (over) spdlog::warn("gateway memory {} bytes reached its budget of {}: refusing new requests", used, budget);
    else spdlog::info("gateway memory {} bytes is below its budget again", used);
  }
  sh->memory_high.store(high, std::memory_order_relaxed);
  sh->memory_timer.expires_after(std::chrono::milliseconds(100));
  sh->memory_timer.async_wait([sh](boost::system::error_code ec) {
    if (!ec) watchMemory(sh);
    else sh->memory_watching = false;
  });
}

void startMemoryWatch(const std::shared_ptr<Shared>& sh) {
  net::post(sh->io.context(0), [sh] {
    if (sh->memory_watching) return;
    sh->memory_watching = true;
    watchMemory(sh);
  });
}

}  // namespace

std::shared_ptr<const v1::Server> FrontServer::serverConfig() const { return shared_->server.load(); }

void FrontServer::setMemoryGauge(std::function<uint64_t()> gauge) { shared_->memory_gauge = std::move(gauge); }

FrontServer::OverloadStats FrontServer::overloadStats() const {
  const Shared& sh = *shared_;
  OverloadStats s;
  s.open_connections = sh.open.load();
  s.active_requests = sh.active.load();
  s.memory_bytes = sh.memory.load();
  s.keep_alive_off = sh.keepAliveOff(sh.server.load()->overload());
  s.refused_connections = sh.refused_connections.load();
  s.refused_per_client = sh.refused_per_client.load();
  s.refused_requests = sh.refused_requests.load();
  s.refused_memory = sh.refused_memory.load();
  return s;
}

std::string FrontServer::url() const {
  auto hp = common::parseHostPort(shared_->server.load()->listen());
  std::string host = hp.ok() ? hp->host : "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return common::strCat(shared_->tls.load() ? "https://" : "http://", host, ":", port());
}

FrontServer::TlsStats FrontServer::tlsStats() const {
  const Shared& sh = *shared_;
  TlsStats s;
  s.handshake_failures = sh.tls_handshake_failures.load();
  s.reloads = sh.tls_reloads.load();
  s.reload_failures = sh.tls_reload_failures.load();
  if (const auto tls = sh.tls.load()) {
    s.enabled = true;
    s.subject = tls->made.subject;
    s.not_after_unix = tls->made.not_after_unix;
    s.reloaded_unix = tls->reloaded_unix;
    s.client_certificates = !tls->settings.client_ca_file().empty();
    s.client_certificates_required = s.client_certificates && tls->settings.require_client_cert();
  }
  {
    common::MutexLock lock(shared_->tls_mu);
    s.last_error = shared_->tls_last_error;
  }
  return s;
}

namespace {

// No new connections (the acceptor closes on its thread), no more memory
// checks; sessions see `draining`.
void stopAccepting(const std::shared_ptr<Shared>& sh) {
  sh->draining.store(true);
  net::post(sh->io.context(0), [sh] {
    boost::system::error_code ec;
    sh->acceptor.close(ec);
    sh->memory_timer.cancel();
  });
}

}  // namespace

void FrontServer::closeAll(std::chrono::milliseconds timeout) {
  auto sh = shared_;
  stopAccepting(sh);
  // Each worker closes its own sessions' sockets (the list and the streams
  // are its thread's): their pending reads and writes end at once, and the
  // sessions finish as their clients would have hung up.
  struct Pending {
    common::Mutex mu;
    common::CondVar cv;
    size_t left ABSL_GUARDED_BY(mu) = 0;
  };
  auto pending = std::make_shared<Pending>();
  {
    common::MutexLock lock(pending->mu);
    pending->left = sh->io.size();
  }
  for (size_t i = 0; i < sh->io.size(); ++i) {
    net::post(sh->io.context(i), [sh, i, pending] {
      for (auto& e : sh->sessions[i]) {
        boost::system::error_code ec;
        e.stream->socket().shutdown(tcp::socket::shutdown_both, ec);
        e.stream->socket().close(ec);
      }
      common::MutexLock lock(pending->mu);
      if (--pending->left == 0) pending->cv.notify_all();
    });
  }
  common::MutexLock lock(pending->mu);
  pending->cv.wait_for(lock, timeout, [&] {
    pending->mu.assertHeld();
    return pending->left == 0;
  });
}

bool FrontServer::drain(std::chrono::milliseconds timeout) {
  auto sh = shared_;
  stopAccepting(sh);
  // Idle keep-alive connections have nothing in flight: close them now.
  // Busy ones see `draining` and close after their response.
  for (size_t i = 0; i < sh->io.size(); ++i) {
    net::post(sh->io.context(i), [sh, i] {
      for (auto& e : sh->sessions[i]) {
        if (e.idle) e.stream->socket().cancel();
      }
    });
  }
  common::MutexLock lock(sh->mu);
  return sh->closed_cv.wait_for(lock, timeout, [&] { return sh->open.load() == 0; });
}

}  // namespace spillway::http
