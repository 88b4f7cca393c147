#include "upstream/exchange.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <limits>

#include "common/strings.h"

namespace spillway::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using Clock = std::chrono::steady_clock;

uint32_t countDataEvents(std::string_view bytes) {
  uint32_t n = 0;
  for (size_t at = bytes.find("data:"); at != std::string_view::npos; at = bytes.find("data:", at + 5)) {
    if (bytes.compare(at, 12, "data: [DONE]") != 0) ++n;
  }
  return n;
}

uint32_t usageCompletionTokens(std::string_view json) {
  // The usage object comes last in every server's answers: search from the end.
  std::string_view key = "\"completion_tokens\"";
  size_t at = json.rfind(key);
  if (at == std::string_view::npos) {
    key = "\"output_tokens\"";
    at = json.rfind(key);
  }
  if (at == std::string_view::npos) return 0;
  size_t i = at + key.size();
  while (i < json.size() && (json[i] == ' ' || json[i] == ':')) ++i;
  uint32_t n = 0;
  std::from_chars(json.data() + i, json.data() + json.size(), n);
  return n;
}

namespace {

void addField(std::string& head, std::string_view name, std::string_view value) {
  head.append(name).append(": ").append(value).append("\r\n");
}

bool isRefusal(int status) { return status == 429 || status >= 500; }

template <typename Fields>
ResponseHead headOf(const bhttp::response_header<Fields>& h, const Backend& b, std::optional<uint64_t> length,
                    std::string_view busy_retry_after) {
  ResponseHead out;
  out.status = h.result_int();
  out.reason = bhttp::obsolete_reason(h.result());
  out.content_type = h[bhttp::field::content_type];
  out.retry_after = h[bhttp::field::retry_after];
  // A busy answer always tells the client when to come back.
  if (out.retry_after.empty() && (out.status == 429 || out.status == 503)) out.retry_after = busy_retry_after;
  out.cache_control = h[bhttp::field::cache_control];
  out.backend = b.name();
  out.length = length;
  out.event_stream = out.content_type.find("text/event-stream") != std::string_view::npos;
  return out;
}

template <typename Stream>
common::Awaitable<ExchangeResult> exchangeOver(Stream& up, Connection& conn, const Backend& backend,
                                               const ExchangeRequest& req, bool reused, ResponseSink& sink) {
  ExchangeResult r;
  const auto& cfg = backend.config();
  const auto first_byte_timeout = std::chrono::milliseconds(cfg.first_byte_timeout_ms());
  const auto idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms());
  boost::system::error_code ec;

  // The request head is formatted by hand and written with the body in one
  // gather write (Beast's serializer cost an allocation per field). Every
  // value comes from a request Beast parsed (no CR/LF) or from the config.
  // HTTP/1.1 keeps the connection alive without a Connection header.
  std::string request_head;
  request_head.reserve(256);
  request_head.append(req.method).append(" ").append(backend.url().path_prefix).append(req.target);
  request_head.append(" HTTP/1.1\r\n");
  addField(request_head, "Host", backend.url().hostHeader());
  addField(request_head, "Content-Type", req.content_type.empty() ? std::string_view("application/json") : req.content_type);
  addField(request_head, "Accept", req.accept.empty() ? std::string_view("*/*") : req.accept);
  addField(request_head, "User-Agent", "spillway");
  if (!backend.apiKey().empty()) request_head.append("Authorization: Bearer ").append(backend.apiKey()).append("\r\n");
  request_head.append(req.extra_headers);
  char digits[24];
  const auto [end, dec] = std::to_chars(digits, digits + sizeof digits, req.body.size());
  addField(request_head, "Content-Length", std::string_view(digits, static_cast<size_t>(end - digits)));
  request_head.append("\r\n");
  const std::array<net::const_buffer, 2> request{net::buffer(request_head), net::buffer(req.body)};

  conn.deadline.expiresAfter(first_byte_timeout);
  co_await net::async_write(up, request, net::redirect_error(common::kUseAwaitable, ec));
  conn.deadline.nameTimeout(ec);
  if (ec) {
    if (reused) {
      r.outcome = Exchange::kRetryable;
      co_return r;
    }
    r.outcome = Exchange::kFailedBeforeResponse;
    r.error = {502, common::strCat("Upstream ", backend.name(), " failed while receiving the request: ", ec.message()),
               "upstream_error", "", "upstream_error"};
    co_return r;
  }

  bhttp::response_parser<bhttp::buffer_body> parser;
  // Not boost::none: Boost 1.74 compares the length against it as "greater than none".
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await bhttp::async_read_header(up, conn.buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
  conn.deadline.nameTimeout(ec);
  if (ec) {
    if (ec == beast::error::timeout) {
      r.outcome = Exchange::kFailedBeforeResponse;
      r.error = {504, common::strCat("Upstream ", backend.name(), " did not answer within ", cfg.first_byte_timeout_ms(), " ms."),
                 "upstream_error", "", "upstream_timeout"};
      co_return r;
    }
    if (reused && !parser.got_some()) {
      r.outcome = Exchange::kRetryable;
      co_return r;
    }
    r.outcome = Exchange::kFailedBeforeResponse;
    r.error = {502, common::strCat("Upstream ", backend.name(), " closed the connection before answering: ", ec.message()),
               "upstream_error", "", "upstream_error"};
    co_return r;
  }

  auto& head = parser.get();
  r.status = head.result_int();
  const bool sse = head[bhttp::field::content_type].find("text/event-stream") != std::string_view::npos;
  const auto content_length = parser.content_length();

  // upstream.max_response_bytes: an answer that says it is larger is
  // refused before anything reaches the client.
  const uint64_t max_bytes = cfg.max_response_bytes() ? cfg.max_response_bytes() : std::numeric_limits<uint64_t>::max();
  if (content_length && *content_length > max_bytes) {
    r.outcome = Exchange::kFailedBeforeResponse;
    r.upstream_reusable = false;
    r.error = {502, common::strCat("Upstream ", backend.name(), " announced an answer of ", *content_length,
                                   " bytes, more than upstream.max_response_bytes (", max_bytes, ")."),
               "upstream_error", "", "upstream_response_too_large"};
    co_return r;
  }

  // Small answers with a length (every non-streamed completion, and every
  // error a server sends): read whole, then one send.
  if (!sse && content_length && *content_length <= kWholeBodyBytes) {
    bhttp::response_parser<bhttp::string_body> whole{std::move(parser)};
    co_await bhttp::async_read(up, conn.buffer, whole, net::redirect_error(common::kUseAwaitable, ec));
    conn.deadline.nameTimeout(ec);
    if (ec) {
      r.outcome = Exchange::kFailedBeforeResponse;
      r.error = {502, common::strCat("Upstream ", backend.name(), " broke off its answer: ", ec.message()),
                 "upstream_error", "", "upstream_error"};
      co_return r;
    }
    r.saw_first_byte = true;
    r.first_byte = Clock::now();
    r.upstream_reusable = whole.keep_alive();
    // `parser` (and `head`) were moved from: everything comes from `whole`.
    auto& got = whole.get();
    if (req.hold_refusals && isRefusal(r.status)) {
      conn.deadline.disarm();
      r.outcome = Exchange::kRefused;
      r.held_body = std::move(got.body());
      r.held_content_type = std::string(got[bhttp::field::content_type]);
      r.held_retry_after = std::string(got[bhttp::field::retry_after]);
      co_return r;
    }
    if (r.status < 300) r.output_tokens = usageCompletionTokens(got.body());
    const ResponseHead out = headOf(got, backend, got.body().size(), req.busy_retry_after);
    conn.deadline.disarm();
    if (!co_await sink.sendWhole(out, got.body())) {
      r.outcome = Exchange::kClientGone;
      co_return r;
    }
    r.outcome = Exchange::kDone;
    co_return r;
  }
  if (req.hold_refusals && isRefusal(r.status)) {
    // A refusal with a large or streamed body: not worth buffering. Drop the
    // connection and keep a short answer of our own to relay.
    r.outcome = Exchange::kRefused;
    r.upstream_reusable = false;
    r.held_content_type = "application/json";
    r.held_retry_after = std::string(head[bhttp::field::retry_after]);
    r.held_body = openai::errorBody({r.status, common::strCat("Upstream ", backend.name(), " answered HTTP ", r.status, "."),
                                     "upstream_error", "", "upstream_error"});
    co_return r;
  }

  const bool chunked = !content_length.has_value() && !parser.is_done();
  const ResponseHead out = headOf(head, backend, chunked ? std::nullopt : std::optional<uint64_t>(content_length.value_or(0)),
                                  req.busy_retry_after);
  if (!co_await sink.sendHead(out)) {
    r.outcome = Exchange::kClientGone;
    co_return r;
  }

  // Relay the body one buffer at a time: the next upstream read starts only
  // once the sink took the previous buffer, so a slow reader slows the
  // upstream (TCP backpressure) instead of growing our memory.
  char buf[16 * 1024];
  uint64_t relayed = 0;
  while (!parser.is_done()) {
    head.body().data = buf;
    head.body().size = sizeof buf;
    conn.deadline.expiresAfter(idle_timeout);
    co_await bhttp::async_read_some(up, conn.buffer, parser, net::redirect_error(common::kUseAwaitable, ec));
    conn.deadline.nameTimeout(ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t n = sizeof buf - head.body().size;
    if (n > 0) {
      if (!r.saw_first_byte) {
        r.saw_first_byte = true;
        r.first_byte = Clock::now();
      }
      if (sse) r.output_tokens += countDataEvents(std::string_view(buf, n));
      relayed += n;
      if (relayed > max_bytes) {
        // A runaway or endless body: cut, never a clean end.
        spdlog::warn("upstream {} sent more than upstream.max_response_bytes ({}): cut", backend.name(), max_bytes);
        std::string event;
        if (sse) {
          openai::ApiError e{502,
                             common::strCat("Upstream ", backend.name(), " sent more than upstream.max_response_bytes (",
                                            max_bytes, " bytes)."),
                             "upstream_error", "", "upstream_response_too_large"};
          event = openai::streamErrorEvent(req.endpoint, e);
        }
        co_await sink.abort(event);
        r.outcome = Exchange::kAbortedMidBody;
        r.upstream_reusable = false;
        co_return r;
      }
      if (!co_await sink.sendBody(std::string_view(buf, n))) {
        r.outcome = Exchange::kClientGone;
        co_return r;
      }
    }
    if (ec) {
      // The upstream broke after the head went out. Never let that look
      // like a clean end: streams get an SSE error event, and the sink ends
      // without a clean end either way.
      spdlog::warn("upstream {} failed mid-response: {}", backend.name(), ec.message());
      std::string event;
      if (sse) {
        openai::ApiError e{502,
                           common::strCat("Upstream ", backend.name(), " failed mid-stream: ", ec.message(),
                                          req.trace_id.empty() ? "" : " (trace ", req.trace_id,
                                          req.trace_id.empty() ? "" : ")"),
                           "upstream_error", "", "upstream_disconnected"};
        event = openai::streamErrorEvent(req.endpoint, e);
      }
      co_await sink.abort(event);
      r.outcome = Exchange::kAbortedMidBody;
      co_return r;
    }
  }
  conn.deadline.disarm();
  if (!co_await sink.sendEnd()) {
    r.outcome = Exchange::kClientGone;
    co_return r;
  }
  r.upstream_reusable = parser.keep_alive();
  r.outcome = Exchange::kDone;
  co_return r;
}

}  // namespace

// Not a coroutine itself: it hands back the stream's coroutine, so an
// exchange costs one coroutine frame, not two (the caller awaits it at
// once, so the references it holds stay valid).
common::Awaitable<ExchangeResult> exchange(Connection& conn, const Backend& backend, const ExchangeRequest& req,
                                           bool reused, ResponseSink& sink) {
  if (auto* plain = std::get_if<PlainStream>(&conn.stream)) return exchangeOver(*plain, conn, backend, req, reused, sink);
  return exchangeOver(std::get<TlsStream>(conn.stream), conn, backend, req, reused, sink);
}

}  // namespace spillway::upstream
