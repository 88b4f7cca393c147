#include "sim/load_generator.h"

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstdlib>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "common/io_pool.h"
#include "common/json_writer.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "common/url.h"
#include "config/config_loader.h"

namespace spillway::sim {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;
using Clock = std::chrono::steady_clock;

void ClassReport::merge(const ClassReport& o) {
  sent += o.sent;
  ok += o.ok;
  degraded += o.degraded;
  retry_after += o.retry_after;
  output_tokens += o.output_tokens;
  prompt_tokens += o.prompt_tokens;
  full_prompt_tokens += o.full_prompt_tokens;
  full_output_tokens += o.full_output_tokens;
  full_latency.merge(o.full_latency);
  answered_latency.merge(o.answered_latency);
  refused_latency.merge(o.refused_latency);
  for (const auto& [k, v] : o.errors) errors[k] += v;
  latency.merge(o.latency);
  ttft.merge(o.ttft);
  frame_gap.merge(o.frame_gap);
  frames += o.frames;
  stalls += o.stalls;
  streams_lost += o.streams_lost;
}

absl::Status validateScenario(v1::Scenario& s) {
  std::vector<std::string> errors;
  if (s.target().empty()) errors.push_back("target: is required (e.g. http://127.0.0.1:8080)");
  else if (auto u = common::parseUrl(s.target()); !u.ok()) errors.push_back("target: " + std::string(u.status().message()));
  else if (u->scheme != "http") errors.push_back("target: only http:// targets are supported");
  if (s.max_connections() == 0) s.set_max_connections(512);
  if (s.threads() == 0) s.set_threads(1);
  if (s.threads() > 64) errors.push_back("threads: must be at most 64");
  if (s.seed() == 0) s.set_seed(1);
  if (s.drain_timeout_ms() == 0) s.set_drain_timeout_ms(30000);
  if (s.classes_size() == 0) errors.push_back("classes: at least one request class is required");
  for (int i = 0; i < s.classes_size(); ++i) {
    auto* c = s.mutable_classes(i);
    std::string p = common::strCat("classes[", i, "]");
    if (c->name().empty()) c->set_name(common::strCat("class", i));
    if (c->weight() == 0) c->set_weight(1);
    if (c->model().empty()) errors.push_back(p + ".model: is required");
    if (c->endpoint().empty()) c->set_endpoint("chat");
    if (c->endpoint() != "chat" && c->endpoint() != "completions" && c->endpoint() != "embeddings" &&
        c->endpoint() != "responses") {
      errors.push_back(p + ".endpoint: must be \"chat\", \"completions\", \"embeddings\" or \"responses\"");
    }
    if (c->prompt_tokens_min() == 0 && c->prompt_tokens_max() == 0) {
      c->set_prompt_tokens_min(8);
      c->set_prompt_tokens_max(8);
    }
    if (c->prompt_tokens_max() < c->prompt_tokens_min()) c->set_prompt_tokens_max(c->prompt_tokens_min());
    if (!c->session().empty() && c->sessions() == 0) c->set_sessions(100);
    if (c->distinct_prompts() > 10'000'000) errors.push_back(p + ".distinct_prompts: must be at most 10000000");
    if (c->zipf_s() < 0 || c->zipf_s() > 10) errors.push_back(p + ".zipf_s: must be between 0 and 10");
  }
  if (s.phases_size() == 0) errors.push_back("phases: at least one phase is required");
  for (int i = 0; i < s.phases_size(); ++i) {
    auto* ph = s.mutable_phases(i);
    std::string p = common::strCat("phases[", i, "]");
    if (ph->name().empty()) ph->set_name(common::strCat("phase", i));
    if (ph->duration_ms() == 0) errors.push_back(p + ".duration_ms: is required");
    if (ph->concurrency() == 0 && ph->rate() <= 0) errors.push_back(p + ": set rate (open loop) or concurrency (closed loop)");
    if (ph->rate() < 0 || ph->rate_end() < 0) errors.push_back(p + ".rate: must not be negative");
  }
  if (!errors.empty()) return absl::InvalidArgumentError(common::join(errors, "\n"));
  return absl::OkStatus();
}

absl::StatusOr<v1::Scenario> loadScenarioFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(common::strCat(path, ": cannot read file"));
  std::stringstream ss;
  ss << in.rdbuf();
  v1::Scenario s;
  auto errors = config::mapYaml(ss.str(), path, &s);
  if (!errors.empty()) return absl::InvalidArgumentError(config::formatErrors(errors));
  return s;
}

namespace {

struct Conn {
  explicit Conn(net::any_io_executor ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct Shared {
  v1::Scenario scenario;
  tcp::endpoint endpoint;
  std::string host_header;
  std::string path_prefix;
  std::vector<uint32_t> class_weights;  // cumulative
  // Per class with distinct_prompts: the cumulative Zipf probabilities of
  // its prompts (empty for other classes).
  std::vector<std::vector<double>> prompt_cdf;
  std::atomic<int64_t> open{0};
  std::atomic<int64_t> max_open{0};
  std::atomic<uint64_t> sent{0}, ok{0}, failed{0};
  std::atomic<size_t> workers_done{0};
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled() const { return cancel && cancel->load(std::memory_order_relaxed); }
  common::Mutex mu;
  common::CondVar done_cv;
  Clock::time_point start;
};

struct Worker {
  Worker(Shared& s, net::io_context& c, size_t index)
      : sh(s), ioc(c), rng(s.scenario.seed() * 7919 + index), arrivals(s.scenario.seed() * 104729 + index),
        reports(static_cast<size_t>(s.scenario.phases_size()),
                std::vector<ClassReport>(static_cast<size_t>(s.scenario.classes_size()))) {}
  Shared& sh;
  net::io_context& ioc;
  std::mt19937_64 rng;       // request contents: class, prompt, session
  std::mt19937_64 arrivals;  // arrival times only: the schedule depends on the seed alone, not on
                             // how the request coroutines interleave with it
  std::vector<std::unique_ptr<Conn>> idle;
  std::vector<std::vector<ClassReport>> reports;  // [phase][class]
  int64_t in_flight = 0;
  Clock::time_point last_completion{};

  size_t pickClass() {
    uint32_t total = sh.class_weights.back();
    uint32_t x = static_cast<uint32_t>(rng() % total);
    return static_cast<size_t>(std::upper_bound(sh.class_weights.begin(), sh.class_weights.end(), x) -
                               sh.class_weights.begin());
  }
};

// A four-letter word (one simulator token) for `n`, from `first` on.
void appendWord(std::string& out, char first, uint32_t n) {
  static constexpr char kDigits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  if (!out.empty()) out += ' ';
  out += first;
  for (int i = 0; i < 3; ++i) {
    out += kDigits[n % 36];
    n /= 36;
  }
}

template <typename Rng>
std::string buildPrompt(const v1::RequestClass& c, uint32_t prompt_tokens, Rng& rng, const std::vector<double>& cdf) {
  std::string prompt;
  prompt.reserve(prompt_tokens * 5);
  if (!cdf.empty()) {
    // One of the class's fixed questions, by its Zipf rank.
    const double u = std::uniform_real_distribution<double>(0, cdf.back())(rng);
    const auto k = static_cast<uint32_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    for (uint32_t i = 0; i < prompt_tokens; ++i) appendWord(prompt, 'q', k * 131 + i);
  } else if (c.prefix_groups() > 0) {
    // The group's shared text, then words no other request has.
    const uint32_t group = static_cast<uint32_t>(rng() % c.prefix_groups());
    const uint32_t shared = std::min(prompt_tokens, c.shared_prefix_tokens());
    for (uint32_t i = 0; i < shared; ++i) appendWord(prompt, static_cast<char>('A' + group % 26), group * 7919 + i);
    for (uint32_t i = shared; i < prompt_tokens; ++i) appendWord(prompt, 'u', static_cast<uint32_t>(rng()));
  } else {
    for (uint32_t i = 0; i < prompt_tokens; ++i) prompt += i ? " tok" : "tok";  // one simulator token per word
  }
  return prompt;
}

template <typename Rng>
std::string buildBody(const v1::RequestClass& c, uint32_t prompt_tokens, Rng& rng, const std::vector<double>& cdf) {
  common::JsonWriter w;
  w.beginObject().key("model").value(c.model());
  if (c.endpoint() == "embeddings") {
    // Each input drawn on its own: repeated questions make partly cached batches.
    w.key("input").beginArray();
    for (uint32_t i = 0; i < std::max<uint32_t>(1, c.batch_size()); ++i) w.value(buildPrompt(c, prompt_tokens, rng, cdf));
    w.endArray().endObject();
    return w.take();
  }
  const std::string prompt = buildPrompt(c, prompt_tokens, rng, cdf);
  if (c.endpoint() == "responses") {
    w.key("input").value(prompt);
    if (c.max_tokens()) w.key("max_output_tokens").value(c.max_tokens());
    if (c.deterministic()) w.key("temperature").value(int64_t{0});
    if (c.stream()) w.key("stream").value(true);
    w.endObject();
    return w.take();
  }
  if (c.endpoint() == "completions") {
    w.key("prompt").value(prompt);
  } else {
    w.key("messages").beginArray().beginObject().key("role").value("user").key("content").value(prompt);
    w.endObject().endArray();
  }
  if (c.max_tokens()) w.key("max_tokens").value(c.max_tokens());
  if (c.deterministic()) w.key("temperature").value(int64_t{0});
  if (c.stream()) {
    w.key("stream").value(true);
    w.key("stream_options").beginObject().key("include_usage").value(true).endObject();
  }
  w.endObject();
  return w.take();
}

uint64_t micros(Clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return us < 0 ? 0 : static_cast<uint64_t>(us);
}

awaitable<void> oneRequest(Worker& w, size_t phase, size_t cls, Clock::time_point scheduled) {
  Shared& sh = w.sh;
  const auto& c = sh.scenario.classes(static_cast<int>(cls));
  ClassReport& rep = w.reports[phase][cls];
  rep.sent++;
  sh.sent.fetch_add(1, std::memory_order_relaxed);
  // in_flight was counted by the caller, before this coroutine was spawned,
  // so a drain that starts meanwhile still waits for it.
  struct Done {
    Worker& w;
    ~Done() {
      w.in_flight--;
      w.last_completion = Clock::now();
    }
  } done{w};
  auto fail = [&](const std::string& why) {
    rep.errors[why]++;
    sh.failed.fetch_add(1, std::memory_order_relaxed);
  };

  std::unique_ptr<Conn> conn;
  if (!w.idle.empty()) {
    conn = std::move(w.idle.back());
    w.idle.pop_back();
  } else {
    int64_t cur = sh.open.load();
    do {
      if (cur >= static_cast<int64_t>(sh.scenario.max_connections())) {
        fail("client_overflow");
        co_return;
      }
    } while (!sh.open.compare_exchange_weak(cur, cur + 1));
    int64_t m = sh.max_open.load();
    while (cur + 1 > m && !sh.max_open.compare_exchange_weak(m, cur + 1)) {
    }
    conn = std::make_unique<Conn>(w.ioc.get_executor());
    boost::system::error_code ec;
    conn->stream.expires_after(std::chrono::seconds(10));
    co_await conn->stream.async_connect(sh.endpoint, net::redirect_error(use_awaitable, ec));
    if (ec) {
      sh.open.fetch_sub(1);
      fail("connect");
      co_return;
    }
    conn->stream.socket().set_option(tcp::no_delay(true), ec);
  }
  struct Closer {
    Shared& sh;
    std::unique_ptr<Conn>& conn;
    ~Closer() {
      if (conn) sh.open.fetch_sub(1);  // not returned to the pool: it closes
    }
  } closer{sh, conn};

  std::uniform_int_distribution<uint32_t> len(c.prompt_tokens_min(), c.prompt_tokens_max());
  const std::string path = c.endpoint() == "completions"   ? "/v1/completions"
                           : c.endpoint() == "embeddings" ? "/v1/embeddings"
                           : c.endpoint() == "responses"  ? "/v1/responses"
                                                          : "/v1/chat/completions";
  http::request<http::string_body> req{http::verb::post, sh.path_prefix + path, 11};
  req.set(http::field::host, sh.host_header);
  req.set(http::field::content_type, "application/json");
  if (!c.priority().empty()) req.set("x-spillway-priority", c.priority());
  if (!c.api_key().empty()) req.set(http::field::authorization, "Bearer " + c.api_key());
  if (!c.session().empty()) {
    std::string s = c.session();
    auto pos = s.find("{n}");
    if (pos != std::string::npos) s.replace(pos, 3, std::to_string(w.rng() % c.sessions()));
    req.set("x-session-id", s);
  }
  req.keep_alive(true);
  const uint32_t prompt_len = len(w.rng);
  // A repeated question keeps one length, so its text (and cache key) is the same each time.
  req.body() = buildBody(c, c.distinct_prompts() ? c.prompt_tokens_min() : prompt_len, w.rng, sh.prompt_cdf[cls]);
  req.prepare_payload();

  boost::system::error_code ec;
  conn->stream.expires_after(std::chrono::seconds(120));
  co_await http::async_write(conn->stream, req, net::redirect_error(use_awaitable, ec));
  if (ec) {
    fail("transport");
    co_return;
  }
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await http::async_read_header(conn->stream, conn->buffer, parser, net::redirect_error(use_awaitable, ec));
  if (ec) {
    fail("transport");
    co_return;
  }
  const auto header_at = Clock::now();
  const int status = parser.get().result_int();
  const bool sse = parser.get()[http::field::content_type].find("text/event-stream") != std::string_view::npos;
  const bool degraded = !parser.get()["x-spillway-degraded"].empty();
  if ((status == 429 || status == 503) && !parser.get()[http::field::retry_after].empty()) rep.retry_after++;
  std::string whole;  // a JSON answer's body, for its usage
  bool first_frame = true, saw_done = false;
  uint64_t frames_seen = 0;
  Clock::time_point last_frame{};
  const uint64_t stall_us = uint64_t{c.expected_itl_ms()} * 10'000;
  std::string pending;
  char buf[8192];
  while (!parser.is_done()) {
    parser.get().body().data = buf;
    parser.get().body().size = sizeof buf;
    co_await http::async_read_some(conn->stream, conn->buffer, parser, net::redirect_error(use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = sizeof buf - parser.get().body().size;
    if (!sse && n > 0 && whole.size() < (1 << 20)) whole.append(buf, n);
    if (sse && n > 0) {
      pending.append(buf, n);
      size_t end;
      while ((end = pending.find("\n\n")) != std::string::npos) {
        // The Responses API's typed events ("event: T\ndata: ..."): its
        // output deltas are the frames, response.completed (or .incomplete)
        // the clean end; its other events are neither.
        const std::string_view block(pending.data(), end);
        std::string_view type;
        if (block.substr(0, 7) == "event: ") type = block.substr(7, block.find('\n') - 7);
        const bool typed = !type.empty();
        const bool data = typed ? type == "response.output_text.delta" : pending.compare(0, 6, "data: ") == 0;
        const bool done_marker = typed ? (type == "response.completed" || type == "response.incomplete")
                                       : pending.compare(0, end, "data: [DONE]") == 0;
        if (done_marker) saw_done = true;
        pending.erase(0, end + 2);
        if (!data) continue;
        if (done_marker) continue;
        const auto now = Clock::now();
        rep.frames++;
        ++frames_seen;
        if (first_frame) {
          rep.ttft.record(micros(now - scheduled));
          first_frame = false;
        } else {
          uint64_t gap = micros(now - last_frame);
          rep.frame_gap.record(gap);
          if (stall_us && gap > stall_us) rep.stalls++;
        }
        last_frame = now;
      }
    }
    if (ec) break;
  }
  const auto finished = Clock::now();
  if (ec) {
    if (sse) rep.streams_lost++;
    fail(status >= 200 && status < 300 ? (sse ? "incomplete_stream" : "transport") : std::to_string(status));
    co_return;
  }
  rep.latency.record(micros(finished - scheduled));
  if (!sse) rep.ttft.record(micros(header_at - scheduled));
  if (status < 200 || status >= 300) {
    if (status == 429) rep.refused_latency.record(micros(finished - scheduled));
    fail(std::to_string(status));
  } else if (sse && !saw_done) {
    rep.streams_lost++;
    fail("incomplete_stream");
  } else {
    rep.ok++;
    rep.answered_latency.record(micros(finished - scheduled));
    rep.prompt_tokens += prompt_len;
    sh.ok.fetch_add(1, std::memory_order_relaxed);
    uint64_t generated = 0;
    if (sse) {
      generated = frames_seen;
    } else if (auto at = whole.rfind("\"completion_tokens\":"); at != std::string::npos) {
      generated = std::strtoull(whole.c_str() + at + 20, nullptr, 10);
    } else if (auto out = whole.rfind("\"output_tokens\":"); out != std::string::npos) {  // the Responses API
      generated = std::strtoull(whole.c_str() + out + 16, nullptr, 10);
    }
    rep.output_tokens += generated;
    if (degraded) {
      rep.degraded++;
    } else {
      rep.full_latency.record(micros(finished - scheduled));
      rep.full_prompt_tokens += prompt_len;
      rep.full_output_tokens += generated;
    }
  }
  if (parser.keep_alive()) {
    conn->stream.expires_never();
    w.idle.push_back(std::move(conn));  // Closer sees null: still open, pooled
  }
}

double rateAt(const v1::Phase& p, double fraction) {
  if (p.rate_end() <= 0) return p.rate();
  return p.rate() + (p.rate_end() - p.rate()) * fraction;
}

awaitable<void> closedLoopClient(Worker& w, size_t phase, Clock::time_point end) {
  while (Clock::now() < end && !w.sh.cancelled()) {
    w.in_flight++;
    co_await oneRequest(w, phase, w.pickClass(), Clock::now());
  }
}

awaitable<void> drive(Worker& w, size_t index) {
  Shared& sh = w.sh;
  const size_t threads = sh.scenario.threads();
  net::steady_timer timer(w.ioc);
  Clock::time_point phase_start = sh.start;
  for (size_t ph = 0; ph < static_cast<size_t>(sh.scenario.phases_size()) && !sh.cancelled(); ++ph) {
    const auto& p = sh.scenario.phases(static_cast<int>(ph));
    const auto duration = std::chrono::milliseconds(p.duration_ms());
    const auto phase_end = phase_start + duration;
    if (p.concurrency() > 0) {
      // This thread's share of the clients.
      uint32_t mine = p.concurrency() / threads + (index < p.concurrency() % threads ? 1 : 0);
      for (uint32_t i = 0; i < mine; ++i) net::co_spawn(w.ioc, closedLoopClient(w, ph, phase_end), net::detached);
      while (Clock::now() < phase_end && !sh.cancelled()) {
        timer.expires_at(std::min(phase_end, Clock::now() + std::chrono::milliseconds(50)));
        boost::system::error_code ec;
        co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
      }
    } else {
      std::exponential_distribution<double> unit(1.0);
      auto t = phase_start;
      for (;;) {
        double frac = std::chrono::duration<double>(t - phase_start) / std::chrono::duration<double>(duration);
        double rate = rateAt(p, frac) / static_cast<double>(threads);
        if (rate <= 0) break;
        t += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(unit(w.arrivals) / rate));
        if (t >= phase_end || sh.cancelled()) break;
        if (t > Clock::now()) {
          timer.expires_at(t);
          boost::system::error_code ec;
          co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
        }
        w.in_flight++;
        net::co_spawn(w.ioc, oneRequest(w, ph, w.pickClass(), t), net::detached);
      }
      if (!sh.cancelled()) {
        timer.expires_at(phase_end);
        boost::system::error_code ec;
        co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
      }
    }
    phase_start = phase_end;
  }
  // Drain: wait for what is still in flight (bounded).
  const auto give_up = Clock::now() + std::chrono::milliseconds(sh.scenario.drain_timeout_ms());
  while (w.in_flight > 0 && Clock::now() < give_up) {
    timer.expires_after(std::chrono::milliseconds(5));
    boost::system::error_code ec;
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
  }
  w.idle.clear();
  sh.workers_done.fetch_add(1);
  common::MutexLock lock(sh.mu);
  sh.done_cv.notify_all();
}

void writeHistogram(common::JsonWriter& j, const char* key, const LatencyHistogram& h) {
  j.key(key).beginObject();
  j.key("count").value(h.count());
  j.key("mean_us").value(h.mean());
  j.key("min_us").value(h.min());
  j.key("p50_us").value(h.percentile(0.50));
  j.key("p90_us").value(h.percentile(0.90));
  j.key("p99_us").value(h.percentile(0.99));
  j.key("p999_us").value(h.percentile(0.999));
  j.key("max_us").value(h.max());
  j.endObject();
}

void writeClass(common::JsonWriter& j, const ClassReport& c) {
  j.beginObject();
  j.key("name").value(c.name);
  j.key("sent").value(c.sent);
  j.key("ok").value(c.ok);
  j.key("degraded").value(c.degraded);
  j.key("retry_after").value(c.retry_after);
  j.key("output_tokens").value(c.output_tokens);
  j.key("prompt_tokens").value(c.prompt_tokens);
  j.key("full_prompt_tokens").value(c.full_prompt_tokens);
  j.key("full_output_tokens").value(c.full_output_tokens);
  j.key("errors").beginObject();
  for (const auto& [k, v] : c.errors) j.key(k).value(v);
  j.endObject();
  writeHistogram(j, "latency", c.latency);
  writeHistogram(j, "ttft", c.ttft);
  writeHistogram(j, "full_latency", c.full_latency);
  writeHistogram(j, "answered_latency", c.answered_latency);
  writeHistogram(j, "refused_latency", c.refused_latency);
  writeHistogram(j, "frame_gap", c.frame_gap);
  j.key("frames").value(c.frames);
  j.key("stalls").value(c.stalls);
  j.key("streams_lost").value(c.streams_lost);
  j.endObject();
}

std::string fmtUs(uint64_t us) {
  char b[32];
  if (us < 1000) std::snprintf(b, sizeof b, "%lluus", static_cast<unsigned long long>(us));
  else if (us < 1000000) std::snprintf(b, sizeof b, "%.2fms", static_cast<double>(us) / 1e3);
  else std::snprintf(b, sizeof b, "%.2fs", static_cast<double>(us) / 1e6);
  return b;
}

}  // namespace

absl::StatusOr<Report> runLoad(v1::Scenario scenario, const ProgressFn& progress, const std::atomic<bool>* cancel) {
  if (auto st = validateScenario(scenario); !st.ok()) return st;
  auto url = common::parseUrl(scenario.target());
  if (!url.ok()) return url.status();

  Shared sh;
  sh.scenario = scenario;
  sh.cancel = cancel;
  sh.host_header = url->hostHeader();
  sh.path_prefix = url->path_prefix;
  {
    net::io_context tmp;
    tcp::resolver resolver(tmp);
    boost::system::error_code ec;
    auto results = resolver.resolve(url->host, std::to_string(url->port), ec);
    if (ec || results.empty()) return absl::UnavailableError(common::strCat("cannot resolve ", url->host));
    sh.endpoint = results.begin()->endpoint();
  }
  uint32_t acc = 0;
  for (const auto& c : scenario.classes()) {
    sh.class_weights.push_back(acc += c.weight());
    auto& cdf = sh.prompt_cdf.emplace_back();
    cdf.reserve(c.distinct_prompts());
    double sum = 0;
    for (uint32_t k = 1; k <= c.distinct_prompts(); ++k) cdf.push_back(sum += 1.0 / std::pow(k, c.zipf_s()));
  }

  // Declared before the pool, so they outlive it: coroutines still pending
  // when the pool is destroyed (a drain that timed out) touch their worker
  // as they are destroyed.
  std::vector<std::unique_ptr<Worker>> workers;
  common::IoPool io(scenario.threads());
  for (size_t i = 0; i < io.size(); ++i) workers.push_back(std::make_unique<Worker>(sh, io.context(i), i));
  sh.start = Clock::now() + std::chrono::milliseconds(20);  // all threads start together
  for (size_t i = 0; i < io.size(); ++i) net::co_spawn(io.context(i), drive(*workers[i], i), net::detached);
  io.start();
  {
    common::MutexLock lock(sh.mu);
    while (!sh.done_cv.wait_for(lock, std::chrono::seconds(1), [&] { return sh.workers_done.load() == io.size(); })) {
      if (progress) {
        progress(std::chrono::duration<double>(Clock::now() - sh.start).count(), sh.sent.load(), sh.ok.load(),
                 sh.failed.load());
      }
    }
  }
  io.stop();

  Report r;
  r.target = scenario.target();
  Clock::time_point last = sh.start;
  for (auto& w : workers) last = std::max(last, w->last_completion);
  r.duration_s = std::chrono::duration<double>(last - sh.start).count();
  double sending_s = 0;
  r.classes.resize(static_cast<size_t>(scenario.classes_size()));
  for (int c = 0; c < scenario.classes_size(); ++c) r.classes[static_cast<size_t>(c)].name = scenario.classes(c).name();
  r.overall.name = "all";
  for (int p = 0; p < scenario.phases_size(); ++p) {
    const auto& ph = scenario.phases(p);
    PhaseReport pr;
    pr.name = ph.name();
    pr.duration_s = ph.duration_ms() / 1000.0;
    pr.target_rate = ph.concurrency() ? 0 : ph.rate();
    pr.concurrency = ph.concurrency();
    pr.overall.name = ph.name();
    sending_s += pr.duration_s;
    pr.classes.resize(static_cast<size_t>(scenario.classes_size()));
    for (int c = 0; c < scenario.classes_size(); ++c) pr.classes[static_cast<size_t>(c)].name = scenario.classes(c).name();
    for (auto& w : workers) {
      for (int c = 0; c < scenario.classes_size(); ++c) {
        const auto& part = w->reports[static_cast<size_t>(p)][static_cast<size_t>(c)];
        pr.overall.merge(part);
        pr.classes[static_cast<size_t>(c)].merge(part);
        r.classes[static_cast<size_t>(c)].merge(part);
        r.overall.merge(part);
      }
    }
    r.phases.push_back(std::move(pr));
  }
  r.achieved_send_rate = sending_s > 0 ? static_cast<double>(r.overall.sent) / sending_s : 0;
  r.throughput = r.duration_s > 0 ? static_cast<double>(r.overall.ok) / r.duration_s : 0;
  r.max_open_connections = static_cast<uint64_t>(sh.max_open.load());
  return r;
}

std::string reportJson(const Report& r) {
  common::JsonWriter j;
  j.beginObject();
  j.key("target").value(r.target);
  j.key("duration_s").value(r.duration_s);
  j.key("achieved_send_rate").value(r.achieved_send_rate);
  j.key("throughput").value(r.throughput);
  j.key("max_open_connections").value(r.max_open_connections);
  j.key("overall");
  writeClass(j, r.overall);
  j.key("classes").beginArray();
  for (const auto& c : r.classes) writeClass(j, c);
  j.endArray();
  j.key("phases").beginArray();
  for (const auto& p : r.phases) {
    j.beginObject().key("name").value(p.name).key("duration_s").value(p.duration_s);
    j.key("target_rate").value(p.target_rate).key("concurrency").value(p.concurrency);
    j.key("report");
    writeClass(j, p.overall);
    j.key("classes").beginArray();
    for (const auto& c : p.classes) writeClass(j, c);
    j.endArray();
    j.endObject();
  }
  j.endArray();
  j.endObject();
  return j.take();
}

std::string formatReport(const Report& r) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "target %s: %.1f s, sent %.0f req/s, %.0f ok/s, peak %llu connections\n",
                r.target.c_str(), r.duration_s, r.achieved_send_rate, r.throughput,
                static_cast<unsigned long long>(r.max_open_connections));
  out += line;
  std::snprintf(line, sizeof line, "%-14s %9s %9s %9s | %9s %9s %9s %9s %9s | %9s %9s | %s\n", "class", "sent", "ok",
                "errors", "p50", "p90", "p99", "p99.9", "max", "ttft p50", "ttft p99", "errors by kind");
  out += line;
  auto row = [&](const ClassReport& c) {
    uint64_t errs = 0;
    std::string kinds;
    for (const auto& [k, v] : c.errors) {
      errs += v;
      common::strAppend(&kinds, kinds.empty() ? "" : " ", k, "=", v);
    }
    if (c.frames) {
      common::strAppend(&kinds, kinds.empty() ? "" : " ", "frames=", c.frames, " gap_p99=",
                        fmtUs(c.frame_gap.percentile(0.99)), " stalls=", c.stalls, " lost=", c.streams_lost);
    }
    std::snprintf(line, sizeof line, "%-14s %9llu %9llu %9llu | %9s %9s %9s %9s %9s | %9s %9s | %s\n",
                  c.name.c_str(), static_cast<unsigned long long>(c.sent), static_cast<unsigned long long>(c.ok),
                  static_cast<unsigned long long>(errs), fmtUs(c.latency.percentile(0.5)).c_str(),
                  fmtUs(c.latency.percentile(0.9)).c_str(), fmtUs(c.latency.percentile(0.99)).c_str(),
                  fmtUs(c.latency.percentile(0.999)).c_str(), fmtUs(c.latency.max()).c_str(),
                  fmtUs(c.ttft.percentile(0.5)).c_str(), fmtUs(c.ttft.percentile(0.99)).c_str(), kinds.c_str());
    out += line;
  };
  for (const auto& c : r.classes) row(c);
  if (r.classes.size() > 1) row(r.overall);
  if (r.phases.size() > 1) {
    out += "by phase:\n";
    for (const auto& p : r.phases) row(p.overall);
  }
  return out;
}

}  // namespace spillway::sim
