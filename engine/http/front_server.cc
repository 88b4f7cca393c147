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
#include <list>
#include <optional>

#include "common/asio_types.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "common/url.h"
#include "http/responses.h"

namespace spillway::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

// A connection as the drain logic sees it; lives in its worker's list and is
// touched on that worker's thread only.
struct SessionEntry {
  common::TcpStream* stream = nullptr;
  bool idle = true;  // waiting for the next request's headers
};

}  // namespace

struct FrontServer::Shared {
  Shared(common::IoPool& io_pool, Gateway& gw, v1::Server s)
      : io(io_pool), gateway(gw), server(std::make_shared<const v1::Server>(std::move(s))),
        acceptor(io_pool.context(0)), sessions(io_pool.size()) {}

  common::IoPool& io;
  Gateway& gateway;
  std::atomic<std::shared_ptr<const v1::Server>> server;  // swapped whole on reload
  common::TcpAcceptor acceptor;  // used on context 0 only
  std::atomic<bool> draining{false};
  std::vector<std::list<SessionEntry>> sessions;  // per worker, that worker's thread only

  common::Mutex mu;
  common::CondVar closed_cv;  // signalled when open_ drops to 0
  std::atomic<int64_t> open{0};

  void connectionClosed() {
    if (open.fetch_sub(1) == 1) {
      common::MutexLock lock(mu);
      closed_cv.notify_all();
    }
  }
};

namespace {

using Shared = FrontServer::Shared;

// A read deadline that cancels the pending read instead of closing the
// socket (as common::TcpStream's own timeouts do), so that a client too slow
// to send its request can still be told so with a 408.
class ReadDeadline {
 public:
  explicit ReadDeadline(common::TcpStream& stream)
      : stream_(stream), timer_(stream.get_executor()), generation_(std::make_shared<uint64_t>(0)) {}
  ~ReadDeadline() { disarm(); }
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;

  void arm(std::chrono::milliseconds d) {
    const uint64_t g = ++*generation_;
    fired_ = false;
    timer_.expires_after(d);
    // The generation check keeps a handler that was already queued when we
    // disarmed (or destroyed) this deadline from touching anything.
    timer_.async_wait([this, gen = generation_, g](boost::system::error_code ec) {
      if (ec || *gen != g) return;
      fired_ = true;
      stream_.socket().cancel(ec);
    });
  }
  void disarm() {
    ++*generation_;
    timer_.cancel();
  }
  bool fired() const { return fired_; }

 private:
  common::TcpStream& stream_;
  common::SteadyTimer timer_;
  std::shared_ptr<uint64_t> generation_;
  bool fired_ = false;
};

common::Awaitable<void> rejectAndClose(Shared& sh, common::TcpStream& stream, openai::ApiError e) {
  sh.gateway.countRejected(e.status);
  stream.expires_after(std::chrono::seconds(5));
  co_await writeApiError(stream, e, false);
}

common::Awaitable<void> session(std::shared_ptr<Shared> sh, size_t worker, common::TcpSocket socket) {
  common::TcpStream stream(std::move(socket));
  auto& list = sh->sessions[worker];
  auto entry = list.insert(list.end(), SessionEntry{&stream, true});
  beast::flat_buffer buffer;
  ReadDeadline deadline(stream);

  for (;;) {
    if (sh->draining.load()) break;
    const std::shared_ptr<const v1::Server> cfg_ptr = sh->server.load();  // this request's limits
    const v1::Server& cfg = *cfg_ptr;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(cfg.max_header_bytes());
    parser.body_limit(cfg.max_body_bytes());
    deadline.arm(std::chrono::milliseconds(cfg.header_timeout_ms()));
    entry->idle = true;
    boost::system::error_code ec;
    co_await bhttp::async_read_header(stream, buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
    entry->idle = false;
    deadline.disarm();
    if (ec == net::error::operation_aborted && deadline.fired()) ec = beast::error::timeout;
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
    // Request smuggling guard: a message framed both ways (or with several
    // lengths) is ambiguous between us and any proxy in front of us.
    if (head.count(bhttp::field::content_length) > 1 ||
        (head.count(bhttp::field::transfer_encoding) && head.count(bhttp::field::content_length))) {
      reject = openai::ApiError{400, "Conflicting Content-Length and Transfer-Encoding headers.", "invalid_request_error", "", "bad_request"};
      co_await rejectAndClose(*sh, stream, std::move(*reject));
      break;
    }
    if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      co_await bhttp::async_write(stream, cont, net::redirect_error(common::kUseAwaitable, ec));
      if (ec) break;
    }
    // Small bodies usually arrived with the headers; only a body still on
    // the wire needs a deadline (saves a timer per request).
    const auto body_length = parser.content_length();
    const bool buffered = parser.is_done() || (body_length && buffer.size() >= *body_length);
    if (!buffered) deadline.arm(std::chrono::milliseconds(cfg.body_timeout_ms()));
    co_await bhttp::async_read(stream, buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
    if (!buffered) deadline.disarm();
    if (ec == net::error::operation_aborted && deadline.fired()) ec = beast::error::timeout;
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
    const bool keep_alive = req.keep_alive() && !sh->draining.load();
    if (!co_await sh->gateway.handle(worker, stream, req, keep_alive)) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
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
    sh->open.fetch_add(1);
    net::co_spawn(sh->io.context(worker), session(sh, worker, std::move(socket)), net::detached);
  }
}

}  // namespace

FrontServer::FrontServer(common::IoPool& io, Gateway& gateway, v1::Server server)
    : shared_(std::make_shared<Shared>(io, gateway, std::move(server))) {}

int64_t FrontServer::openConnections() const { return shared_->open.load(); }

FrontServer::~FrontServer() {
  if (!shared_->draining.load()) drain(std::chrono::milliseconds(0));
}

void FrontServer::setServerConfig(v1::Server server) {
  shared_->server.store(std::make_shared<const v1::Server>(std::move(server)));
}

absl::Status FrontServer::start() {
  auto hp = common::parseHostPort(shared_->server.load()->listen());
  if (!hp.ok()) return hp.status();
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
  return absl::OkStatus();
}

std::string FrontServer::url() const {
  auto hp = common::parseHostPort(shared_->server.load()->listen());
  std::string host = hp.ok() ? hp->host : "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return common::strCat("http://", host, ":", port());
}

bool FrontServer::drain(std::chrono::milliseconds timeout) {
  auto sh = shared_;
  sh->draining.store(true);
  net::post(sh->io.context(0), [sh] {
    boost::system::error_code ec;
    sh->acceptor.close(ec);
  });
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
