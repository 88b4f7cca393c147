#include "sim/sim_server.h"

#include <list>
#include <unordered_map>

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <random>

#include "common/mutex.h"
#include "common/strings.h"
#include "common/json_writer.h"
#include "metrics/registry.h"
#include "openai/openai.h"
#include "sim/sim_answers.h"
#include "sim/text_generator.h"

namespace spillway::sim {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

struct Waiter {
  explicit Waiter(net::any_io_executor ex) : timer(ex) {}
  net::steady_timer timer;
  bool granted = false;  // under the server State's mu
};

}  // namespace

struct SimServer::State {
  State(common::IoPool& io_pool, v1::SimProfile p, std::vector<std::string> m, std::string n)
      : io(io_pool), profile(std::move(p)), models(std::move(m)), name(std::move(n)),
        acceptor(io_pool.context(0)), rng(profile.seed()) {
    requests = &registry.counter("spillway_sim_requests_total",
                                 "Requests answered by the simulator, by HTTP status.", {"code"});
    tokens = &registry.counter("spillway_sim_generated_tokens_total", "Tokens generated.", {})
                  .with({});
    prefix_hits = &registry.counter("spillway_sim_prefix_cache_hit_tokens_total",
                                    "Prompt tokens served from the prefix (KV) cache, skipping prefill.", {})
                       .with({});
    // Fresh registry: the names are free, the statuses always ok.
    registry.callbackGauge("spillway_sim_running_sequences", "Sequences generating now.", {},
                           [this] { return one(static_cast<double>(snapshot().running)); }).IgnoreError();
    registry.callbackGauge("spillway_sim_waiting_requests", "Requests waiting for a slot.", {},
                           [this] { return one(static_cast<double>(snapshot().waiting)); }).IgnoreError();
    registry.callbackGauge("spillway_sim_slots", "Sequence slots (max_num_seqs).", {},
                           [this] { return one(profile.max_num_seqs()); }).IgnoreError();
    registry.callbackGauge("spillway_sim_max_waiting", "Capacity of the waiting queue.", {},
                           [this] { return one(profile.max_waiting()); }).IgnoreError();
    // The gauges vLLM exports under these names, so a gateway that reads
    // vLLM's load signals can be tested against the simulator.
    auto per_model = [this](double v) {
      std::vector<std::pair<metrics::Labels, double>> out;
      for (const auto& m : models) out.push_back({{m}, v});
      return out;
    };
    registry.callbackGauge("vllm:num_requests_running", "Number of requests currently running on GPU.", {"model_name"},
                           [this, per_model] { return per_model(static_cast<double>(snapshot().running)); }).IgnoreError();
    registry.callbackGauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", {"model_name"},
                           [this, per_model] { return per_model(static_cast<double>(snapshot().waiting)); }).IgnoreError();
    registry.callbackGauge("vllm:gpu_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", {"model_name"},
                           [this, per_model] {
                             const double slots = std::max<uint32_t>(1, profile.max_num_seqs());
                             return per_model(static_cast<double>(snapshot().running) / slots);
                           }).IgnoreError();
  }

  // Prompt tokens whose prefill the prefix cache saves for `prompt`: the
  // leading whole blocks (prefix_block_tokens tokens, about 4 bytes each)
  // already cached; the prompt's blocks are then cached (LRU).
  uint32_t prefixCachedTokens(std::string_view prompt) {
    const uint32_t block_tokens = profile.prefix_block_tokens();
    if (block_tokens == 0) return 0;
    const size_t block_bytes = size_t{block_tokens} * 4;
    const size_t capacity = profile.prefix_cache_blocks() ? profile.prefix_cache_blocks() : 4096;
    uint64_t chain = 1469598103934665603ull;
    uint32_t cached = 0;
    bool run = true;
    common::MutexLock lock(mu);
    for (size_t at = 0; at + block_bytes <= prompt.size(); at += block_bytes) {
      for (char ch : prompt.substr(at, block_bytes)) chain = (chain ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
      auto it = prefix_index.find(chain);
      if (it != prefix_index.end()) {
        if (run) cached += block_tokens;
        prefix_lru.splice(prefix_lru.begin(), prefix_lru, it->second);
      } else {
        run = false;
        prefix_lru.push_front(chain);
        prefix_index[chain] = prefix_lru.begin();
        if (prefix_index.size() > capacity) {
          prefix_index.erase(prefix_lru.back());
          prefix_lru.pop_back();
        }
      }
    }
    return cached;
  }

  static std::vector<std::pair<metrics::Labels, double>> one(double v) { return {{{}, v}}; }

  SimCounters snapshot() {
    SimCounters c;
    {
      common::MutexLock lock(mu);
      c.running = running;
      c.waiting = waiters.size();
    }
    c.completed = completed.load();
    c.rejected_busy = rejected_busy.load();
    c.injected_failures = injected.load();
    c.generated_tokens = tokens->value();
    c.embedding_inputs = embedding_inputs.load();
    return c;
  }

  // Takes a sequence slot, waiting in FIFO order when all are busy. False
  // when the waiting queue is full too (the caller answers 503) or on stop.
  awaitable<bool> acquireSlot() {
    std::shared_ptr<Waiter> w;
    {
      common::MutexLock lock(mu);
      if (stopped) co_return false;
      if (running < profile.max_num_seqs()) {
        ++running;
        co_return true;
      }
      if (waiters.size() >= profile.max_waiting()) co_return false;
      w = std::make_shared<Waiter>(co_await net::this_coro::executor);
      w->timer.expires_at(Clock::time_point::max());
      waiters.push_back(w);
    }
    boost::system::error_code ec;
    co_await w->timer.async_wait(net::redirect_error(use_awaitable, ec));
    common::MutexLock lock(mu);
    co_return w->granted;
  }

  // Frees a slot, handing it straight to the oldest waiter if there is one.
  void releaseSlot() {
    std::shared_ptr<Waiter> w;
    {
      common::MutexLock lock(mu);
      if (!waiters.empty()) {
        w = std::move(waiters.front());
        waiters.pop_front();
        w->granted = true;  // the slot passes on; running stays the same
      } else {
        --running;
      }
    }
    // Timers are not thread-safe: cancel on the waiter's own thread.
    if (w) net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
  }

  bool injectFailure() {
    const double rate = failure_rate.load(std::memory_order_relaxed);
    if (rate <= 0) return false;
    common::MutexLock lock(mu);
    return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
  }

  common::IoPool& io;
  const v1::SimProfile profile;
  const std::vector<std::string> models;
  const std::string name;
  tcp::acceptor acceptor;  // used on io.context(0) only
  std::atomic<uint16_t> port{0};
  std::atomic<uint64_t> next_id{1};
  std::atomic<uint64_t> completed{0}, rejected_busy{0}, injected{0}, embedding_inputs{0};
  // failures.rate, changeable while running (POST /sim/failures?rate=X) so
  // benchmarks can turn a failure on halfway.
  std::atomic<double> failure_rate{profile.failures().rate()};

  common::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  uint32_t running ABSL_GUARDED_BY(mu) = 0;
  std::deque<std::shared_ptr<Waiter>> waiters ABSL_GUARDED_BY(mu);
  std::mt19937_64 rng ABSL_GUARDED_BY(mu);
  // The prefix (KV) cache: chained block hashes, most recent first.
  std::list<uint64_t> prefix_lru ABSL_GUARDED_BY(mu);
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> prefix_index ABSL_GUARDED_BY(mu);
  // Responses API responses stored (store: true, the default), by id; the
  // oldest forgotten past kStoredResponses.
  static constexpr size_t kStoredResponses = 10000;
  std::unordered_map<std::string, std::string> stored ABSL_GUARDED_BY(mu);
  std::deque<std::string> stored_order ABSL_GUARDED_BY(mu);

  void storeResponse(const std::string& id, std::string object) {
    common::MutexLock lock(mu);
    if (stored.emplace(id, std::move(object)).second) stored_order.push_back(id);
    while (stored_order.size() > kStoredResponses) {
      stored.erase(stored_order.front());
      stored_order.pop_front();
    }
  }
  std::optional<std::string> storedResponse(const std::string& id) {
    common::MutexLock lock(mu);
    auto it = stored.find(id);
    if (it == stored.end()) return std::nullopt;
    return it->second;
  }
  bool deleteResponse(const std::string& id) {
    common::MutexLock lock(mu);
    return stored.erase(id) > 0;
  }

  metrics::Registry registry;
  metrics::Family<metrics::Counter>* requests;
  metrics::Counter* prefix_hits;
  metrics::Counter* tokens;
};

namespace {

using State = SimServer::State;

class SlotGuard {
 public:
  explicit SlotGuard(State& s) : s_(s) {}
  ~SlotGuard() { s_.releaseSlot(); }
  SlotGuard(const SlotGuard&) = delete;
  SlotGuard& operator=(const SlotGuard&) = delete;

 private:
  State& s_;
};

int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

awaitable<bool> writeResponse(beast::tcp_stream& stream, State& st, http::status status,
                              std::string body, std::string_view content_type, bool keep_alive,
                              uint32_t retry_after = 0) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, "spillway-sim");
  res.set(http::field::content_type, content_type);
  if (retry_after) res.set(http::field::retry_after, std::to_string(retry_after));
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  st.requests->with({std::to_string(static_cast<int>(status))}).inc();
  boost::system::error_code ec;
  co_await http::async_write(stream, res, net::redirect_error(use_awaitable, ec));
  co_return !ec && keep_alive;
}

// Takes the error by value: callers pass named locals, never temporaries, as
// GCC 12 can destroy a temporary in a co_await full-expression twice.
awaitable<bool> writeError(beast::tcp_stream& stream, State& st, openai::ApiError e, bool keep_alive,
                           uint32_t retry_after = 0) {
  std::string body = openai::errorBody(e);
  co_return co_await writeResponse(stream, st, static_cast<http::status>(e.status), std::move(body),
                                   "application/json", keep_alive, retry_after);
}

struct Completion {
  const openai::ParsedRequest& req;
  std::string id;
  int64_t created;
  uint32_t prompt_tokens;
  uint32_t completion_tokens;
  const char* finish_reason;
  bool chat() const { return req.endpoint == openai::Endpoint::kChatCompletions; }

  void usage(common::JsonWriter& w) const {
    w.key("usage").beginObject();
    w.key("prompt_tokens").value(prompt_tokens);
    w.key("completion_tokens").value(completion_tokens);
    w.key("total_tokens").value(prompt_tokens + completion_tokens);
    w.endObject();
  }

  void head(common::JsonWriter& w, const char* object) const {
    w.key("id").value(id);
    w.key("object").value(object);
    w.key("created").value(created);
    w.key("model").value(req.model);
    w.key("system_fingerprint").value("spillway-sim");
  }

  std::string full(const std::string& text) const {
    common::JsonWriter w;
    w.beginObject();
    head(w, chat() ? "chat.completion" : "text_completion");
    w.key("choices").beginArray().beginObject();
    w.key("index").value(0);
    if (chat()) {
      w.key("message").beginObject().key("role").value("assistant").key("content").value(text);
      w.key("refusal").null().endObject();
    } else {
      w.key("text").value(text);
    }
    w.key("logprobs").null();
    w.key("finish_reason").value(finish_reason);
    w.endObject().endArray();
    usage(w);
    w.endObject();
    return w.take();
  }

  // One streamed chunk: `role` only on the first chat chunk, `finish` on the last.
  std::string chunk(std::string_view text, bool role, const char* finish) const {
    common::JsonWriter w;
    w.beginObject();
    head(w, chat() ? "chat.completion.chunk" : "text_completion");
    w.key("choices").beginArray().beginObject();
    w.key("index").value(0);
    if (chat()) {
      w.key("delta").beginObject();
      if (role) w.key("role").value("assistant");
      if (role || !finish) w.key("content").value(text);
      w.endObject();
    } else {
      w.key("text").value(text);
    }
    w.key("logprobs").null();
    w.key("finish_reason");
    finish ? w.value(finish) : w.null();
    w.endObject().endArray();
    if (req.include_usage) w.key("usage").null();
    w.endObject();
    return openai::sseData(w.str());
  }

  std::string usageChunk() const {
    common::JsonWriter w;
    w.beginObject();
    head(w, chat() ? "chat.completion.chunk" : "text_completion");
    w.key("choices").beginArray().endArray();
    usage(w);
    w.endObject();
    return openai::sseData(w.str());
  }
};

awaitable<bool> writeChunk(beast::tcp_stream& stream, const std::string& data) {
  boost::system::error_code ec;
  co_await net::async_write(stream, http::make_chunk(net::buffer(data)),
                            net::redirect_error(use_awaitable, ec));
  co_return !ec;
}

void resetConnection(beast::tcp_stream& stream) {
  boost::system::error_code ec;
  stream.socket().set_option(net::socket_base::linger(true, 0), ec);
  stream.socket().close(ec);
}

// The head of a 200 event stream (chunked); false when the client is gone.
awaitable<bool> writeEventStreamHead(beast::tcp_stream& stream, State& st, bool keep_alive) {
  http::response<http::empty_body> res{http::status::ok, 11};
  res.set(http::field::server, "spillway-sim");
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(keep_alive);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  boost::system::error_code ec;
  co_await http::async_write_header(stream, sr, net::redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  st.requests->with({"200"}).inc();
  co_return true;
}

// When a generation's tokens come out: the first at `first`, then one
// every `itl`.
struct Timing {
  Clock::time_point first;
  std::chrono::milliseconds itl;
};

// The Responses API: the same generation as chat, as a response object or
// its typed event stream; the response is stored under its id.
awaitable<bool> respond(beast::tcp_stream& stream, State& st, const openai::ParsedRequest& req, bool keep_alive,
                        bool reset_mid_stream, TextGenerator& gen, uint32_t n, bool incomplete, Timing at) {
  const uint64_t serial = st.next_id.fetch_add(1);
  ResponseParts p;
  p.id = common::strCat("resp_", st.name, "_", serial);
  p.item_id = common::strCat("msg_", st.name, "_", serial);
  p.model = req.model;
  p.created_at = unixNow();
  p.previous_response_id = req.previous_response_id;
  p.input_tokens = openai::promptTokens(req);
  p.output_tokens = n;
  p.incomplete = incomplete;
  const auto [first_token_at, itl] = at;
  net::steady_timer timer(co_await net::this_coro::executor);
  boost::system::error_code ec;
  std::string text;
  if (!req.stream) {
    for (uint32_t i = 0; i < n; ++i) text += gen.next();
    timer.expires_at(first_token_at + itl * (n > 0 ? n - 1 : 0));
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
    st.tokens->inc(n);
    st.completed.fetch_add(1);
    std::string object = responseObject(p, incomplete ? "incomplete" : "completed", text);
    st.storeResponse(p.id, object);
    co_return co_await writeResponse(stream, st, http::status::ok, std::move(object), "application/json", keep_alive);
  }
  if (!co_await writeEventStreamHead(stream, st, keep_alive)) co_return false;
  uint32_t seq = 0;
  if (!co_await writeChunk(stream, responseOpening(p, seq))) co_return false;
  for (uint32_t i = 0; i < n; ++i) {
    timer.expires_at(first_token_at + itl * i);
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
    if (reset_mid_stream && i == n / 2) {
      resetConnection(stream);
      co_return false;
    }
    const std::string token = gen.next();
    text += token;
    if (!co_await writeChunk(stream, responseDelta(p, token, seq))) co_return false;
    st.tokens->inc();
  }
  st.storeResponse(p.id, responseObject(p, incomplete ? "incomplete" : "completed", text));
  if (!co_await writeChunk(stream, responseClosing(p, text, seq))) co_return false;
  co_await net::async_write(stream, http::make_chunk_last(), net::redirect_error(use_awaitable, ec));
  st.completed.fetch_add(1);
  co_return !ec && keep_alive;
}

// Embeddings: a slot for prefill_base_ms plus embed_per_token_us per input token.
awaitable<bool> embed(beast::tcp_stream& stream, State& st, std::string_view body, bool keep_alive) {
  if (st.injectFailure()) {
    st.injected.fetch_add(1);
    openai::ApiError e = openai::serverBusy("Injected failure: server busy.");
    co_return co_await writeError(stream, st, std::move(e), keep_alive);
  }
  auto answer = embeddings(body, st.profile.embedding_dimensions());
  if (auto* e = std::get_if<openai::ApiError>(&answer)) co_return co_await writeError(stream, st, *e, keep_alive);
  Embedded out = std::move(std::get<Embedded>(answer));
  if (!co_await st.acquireSlot()) {
    st.rejected_busy.fetch_add(1);
    openai::ApiError e = openai::serverBusy();
    co_return co_await writeError(stream, st, std::move(e), keep_alive, 1);
  }
  SlotGuard slot(st);
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_after(std::chrono::microseconds(uint64_t{st.profile.prefill_base_ms()} * 1000 +
                                                uint64_t{st.profile.embed_per_token_us()} * out.tokens));
  boost::system::error_code ec;
  co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
  st.embedding_inputs.fetch_add(out.inputs);
  st.completed.fetch_add(1);
  co_return co_await writeResponse(stream, st, http::status::ok, std::move(out.body), "application/json", keep_alive);
}

// The passthrough endpoints vLLM serves (sim_answers.h's passthroughAnswer).
awaitable<bool> other(beast::tcp_stream& stream, State& st, std::variant<std::string, openai::ApiError> answer,
                      bool keep_alive) {
  if (auto* e = std::get_if<openai::ApiError>(&answer)) co_return co_await writeError(stream, st, *e, keep_alive);
  st.completed.fetch_add(1);
  std::string out = std::move(std::get<std::string>(answer));
  co_return co_await writeResponse(stream, st, http::status::ok, std::move(out), "application/json", keep_alive);
}

awaitable<bool> complete(beast::tcp_stream& stream, State& st, const openai::ParsedRequest& req,
                         bool keep_alive) {
  const auto& prof = st.profile;
  bool reset_mid_stream = false;
  if (st.injectFailure()) {
    st.injected.fetch_add(1);
    switch (prof.failures().kind()) {
      case v1::HTTP_503: {
        openai::ApiError e = openai::serverBusy("Injected failure: server busy.");
        co_return co_await writeError(stream, st, std::move(e), keep_alive);
      }
      case v1::HTTP_429: {
        openai::ApiError e{429, "Injected failure: rate limit reached.", "rate_limit_error", "",
                           "rate_limit_exceeded"};
        co_return co_await writeError(stream, st, std::move(e), keep_alive, prof.failures().retry_after_seconds());
      }
      case v1::RESET_MID_STREAM:
        if (!req.stream) {
          resetConnection(stream);
          co_return false;
        }
        reset_mid_stream = true;
        break;
      default: {
        openai::ApiError e{500, "Injected failure: internal error.", "server_error", "", "internal_error"};
        co_return co_await writeError(stream, st, std::move(e), keep_alive);
      }
    }
  }

  if (!co_await st.acquireSlot()) {
    st.rejected_busy.fetch_add(1);
    openai::ApiError e = openai::serverBusy();
    co_return co_await writeError(stream, st, std::move(e), keep_alive, 1);
  }
  SlotGuard slot(st);

  const auto start = Clock::now();
  TextGenerator gen(prof.seed(), req.prompt_text);
  const uint32_t natural = gen.naturalLength(prof.min_output_tokens(), prof.max_output_tokens());
  const uint32_t n = req.max_tokens ? std::min(natural, *req.max_tokens) : natural;
  const uint32_t prompt_tokens = openai::promptTokens(req);
  // Cached prefix tokens skip their prefill cost (vLLM's automatic prefix caching).
  const uint32_t cached_tokens = std::min(prompt_tokens, st.prefixCachedTokens(req.prompt_text));
  if (cached_tokens) st.prefix_hits->inc(cached_tokens);
  const auto prefill = std::chrono::microseconds(uint64_t{prof.prefill_base_ms()} * 1000 +
                                                 uint64_t{prof.prefill_per_token_us()} * (prompt_tokens - cached_tokens));
  const auto itl = std::chrono::milliseconds(prof.inter_token_ms());
  const auto first_token_at = start + prefill;
  if (req.endpoint == openai::Endpoint::kResponses) {
    co_return co_await respond(stream, st, req, keep_alive, reset_mid_stream, gen, n, n < natural,
                               Timing{first_token_at, itl});
  }
  Completion c{req,
               common::strCat(req.endpoint == openai::Endpoint::kChatCompletions ? "chatcmpl-" : "cmpl-",
                            st.name, "-", st.next_id.fetch_add(1)),
               unixNow(), prompt_tokens, n, n < natural ? "length" : "stop"};
  net::steady_timer timer(co_await net::this_coro::executor);
  boost::system::error_code ec;

  if (!req.stream) {
    std::string text;
    for (uint32_t i = 0; i < n; ++i) text += gen.next();
    timer.expires_at(first_token_at + itl * (n > 0 ? n - 1 : 0));
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
    st.tokens->inc(n);
    st.completed.fetch_add(1);
    co_return co_await writeResponse(stream, st, http::status::ok, c.full(text), "application/json",
                                     keep_alive);
  }

  if (!co_await writeEventStreamHead(stream, st, keep_alive)) co_return false;
  if (c.chat()) {
    timer.expires_at(first_token_at);
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
    if (!co_await writeChunk(stream, c.chunk("", true, nullptr))) co_return false;
  }
  for (uint32_t i = 0; i < n; ++i) {
    timer.expires_at(first_token_at + itl * i);
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
    if (reset_mid_stream && i == n / 2) {
      resetConnection(stream);
      co_return false;
    }
    if (!co_await writeChunk(stream, c.chunk(gen.next(), false, nullptr))) co_return false;
    st.tokens->inc();
  }
  if (!co_await writeChunk(stream, c.chunk("", false, c.finish_reason))) co_return false;
  if (req.include_usage && !co_await writeChunk(stream, c.usageChunk())) co_return false;
  if (!co_await writeChunk(stream, std::string(openai::kSseDone))) co_return false;
  co_await net::async_write(stream, http::make_chunk_last(), net::redirect_error(use_awaitable, ec));
  st.completed.fetch_add(1);
  co_return !ec && keep_alive;
}

awaitable<bool> handle(beast::tcp_stream& stream, State& st, http::request<http::string_body>& req,
                       openai::RequestParser& parser) {
  const bool keep = req.keep_alive();
  std::string_view target = req.target();
  if (req.method() == http::verb::get) {
    if (target == "/healthz" || target == "/health") {
      co_return co_await writeResponse(stream, st, http::status::ok, R"({"status":"ok"})",
                                       "application/json", keep);
    }
    if (target == "/metrics") {
      co_return co_await writeResponse(stream, st, http::status::ok, st.registry.render(),
                                       "text/plain; version=0.0.4; charset=utf-8", keep);
    }
    if (target == "/v1/models") {
      common::JsonWriter w;
      w.beginObject().key("object").value("list").key("data").beginArray();
      for (const auto& m : st.models) {
        w.beginObject().key("id").value(m).key("object").value("model");
        w.key("created").value(int64_t{0}).key("owned_by").value("spillway-sim").endObject();
      }
      w.endArray().endObject();
      co_return co_await writeResponse(stream, st, http::status::ok, w.take(), "application/json", keep);
    }
  }
  if (req.method() == http::verb::post && target.rfind("/sim/failures?rate=", 0) == 0) {
    // Fault injection switched at run time (the kind stays the configured one).
    const std::string value(target.substr(std::string_view("/sim/failures?rate=").size()));
    char* end = nullptr;
    const double rate = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(rate >= 0 && rate <= 1)) {
      openai::ApiError e{400, "rate must be a number in [0, 1]", "invalid_request_error", "rate", "invalid_value"};
      co_return co_await writeError(stream, st, std::move(e), keep);
    }
    st.failure_rate.store(rate);
    co_return co_await writeResponse(stream, st, http::status::ok, common::strCat("{\"rate\":", value, "}"),
                                     "application/json", keep);
  }
  const std::string_view path = openai::targetPath(target);
  if (const std::string_view id = openai::responseIdOfTarget(path); !id.empty()) {
    // A stored response: read or deleted.
    const std::string key(id);
    if (req.method() == http::verb::get) {
      if (auto object = st.storedResponse(key)) {
        co_return co_await writeResponse(stream, st, http::status::ok, std::move(*object), "application/json", keep);
      }
    } else if (req.method() == http::verb::delete_ && st.deleteResponse(key)) {
      std::string body = common::strCat(R"({"id":")", key, R"(","object":"response.deleted","deleted":true})");
      co_return co_await writeResponse(stream, st, http::status::ok, std::move(body), "application/json", keep);
    }
    openai::ApiError e{404, common::strCat("Response with id '", key, "' not found."), "invalid_request_error", "",
                       "not_found"};
    co_return co_await writeError(stream, st, std::move(e), keep);
  }
  if (req.method() == http::verb::post) {
    if (path == "/v1/embeddings") co_return co_await embed(stream, st, req.body(), keep);
    if (auto answer = passthroughAnswer(path, req[http::field::content_type], req.body())) {
      co_return co_await other(stream, st, std::move(*answer), keep);
    }
  }
  auto endpoint = openai::endpointForTarget(target);
  if (!endpoint || req.method() != http::verb::post) {
    openai::ApiError e{404, common::strCat("Unknown request URL: ", req.method_string(), " ", target, "."),
                       "invalid_request_error", "", "unknown_url"};
    co_return co_await writeError(stream, st, std::move(e), keep);
  }
  auto parsed = parser.parse(*endpoint, req.body());
  if (auto* e = std::get_if<openai::ApiError>(&parsed)) co_return co_await writeError(stream, st, *e, keep);
  const auto& prev = std::get<openai::ParsedRequest>(parsed).previous_response_id;
  if (!prev.empty() && !st.storedResponse(prev)) {
    // State lives on the server that made it, as with vLLM and OpenAI.
    openai::ApiError e{400, common::strCat("Previous response with id '", prev, "' not found."),
                       "invalid_request_error", "previous_response_id", "previous_response_not_found"};
    co_return co_await writeError(stream, st, std::move(e), keep);
  }
  co_return co_await complete(stream, st, std::get<openai::ParsedRequest>(parsed), keep);
}

awaitable<void> session(std::shared_ptr<State> st, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  openai::RequestParser parser;
  for (;;) {
    http::request_parser<http::string_body> p;
    p.body_limit(16 << 20);
    stream.expires_after(std::chrono::seconds(120));
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, p, net::redirect_error(use_awaitable, ec));
    if (ec) break;
    stream.expires_never();
    auto req = p.release();
    if (!co_await handle(stream, *st, req, parser)) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

awaitable<void> acceptLoop(std::shared_ptr<State> st) {
  for (;;) {
    size_t idx = st->io.nextIndex();
    boost::system::error_code ec;
    tcp::socket socket = co_await st->acceptor.async_accept(
        st->io.context(idx), net::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == net::error::operation_aborted || !st->acceptor.is_open()) co_return;
      continue;  // e.g. EMFILE: keep serving the connections we have
    }
    socket.set_option(tcp::no_delay(true), ec);
    net::co_spawn(st->io.context(idx), session(st, std::move(socket)), net::detached);
  }
}

}  // namespace

SimServer::SimServer(common::IoPool& io, v1::SimProfile profile, std::vector<std::string> models,
                     std::string name)
    : state_(std::make_shared<State>(io, std::move(profile), std::move(models), std::move(name))) {}

SimServer::~SimServer() { stop(); }

absl::Status SimServer::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(common::strCat("invalid address \"", host, "\""));
  tcp::endpoint ep(addr, port);
  auto& a = state_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        common::strCat("simulator ", state_->name, ": cannot listen on ", host, ":", port, ": ", ec.message()));
  }
  state_->port = a.local_endpoint().port();
  net::co_spawn(state_->io.context(0), acceptLoop(state_), net::detached);
  return absl::OkStatus();
}

uint16_t SimServer::port() const { return state_->port.load(); }

void SimServer::stop() {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    common::MutexLock lock(state_->mu);
    if (state_->stopped) return;
    state_->stopped = true;
    waiters.assign(state_->waiters.begin(), state_->waiters.end());
    state_->waiters.clear();
  }
  for (auto& w : waiters) net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
  // The acceptor belongs to context 0's thread; close it there.
  net::post(state_->io.context(0), [st = state_] {
    boost::system::error_code ec;
    st->acceptor.close(ec);
  });
}

SimCounters SimServer::counters() const { return state_->snapshot(); }

std::string SimServer::metricsText() const { return state_->registry.render(); }

}  // namespace spillway::sim
