#include "admission/degradation.h"

#include <boost/beast/http/field.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "admission/admission_queue.h"
#include "admission/priority.h"
#include "cache/cache_stage.h"
#include "cache/cache_state.h"
#include "cache/response_cache.h"
#include "common/clock.h"
#include "common/json_writer.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "openai/openai.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

namespace {

// A completion with fixed text in the form the client asked for.
std::string fixedAnswer(const openai::ParsedRequest& req, const std::string& text) {
  const bool chat = req.endpoint == openai::Endpoint::kChatCompletions;
  common::JsonWriter j;
  auto choice = [&](bool delta) {
    j.beginObject().key("index").value(0);
    if (chat) {
      j.key(delta ? "delta" : "message").beginObject().key("role").value("assistant").key("content").value(text).endObject();
    } else {
      j.key("text").value(text);
    }
    j.key("finish_reason").value("stop").endObject();
  };
  if (!req.stream) {
    j.beginObject().key("id").value("spillway-degraded").key("object").value(chat ? "chat.completion" : "text_completion");
    j.key("created").value(int64_t{0}).key("model").value(req.model).key("choices").beginArray();
    choice(false);
    j.endArray().endObject();
    return j.take();
  }
  j.beginObject().key("id").value("spillway-degraded").key("object").value(chat ? "chat.completion.chunk" : "text_completion");
  j.key("created").value(int64_t{0}).key("model").value(req.model).key("choices").beginArray();
  choice(true);
  j.endArray().endObject();
  return common::strCat("data: ", j.take(), "\n\ndata: [DONE]\n\n");
}

constexpr std::string_view kBusyPage =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Service busy</title></head>"
    "<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>Service busy</h1>"
    "<p>The service is under heavy load. Please retry in a little while.</p></body></html>\n";

}  // namespace

int classLevel(int pool_level, Priority p) {
  const int offset = p == Priority::kSheddable ? 0 : p == Priority::kStandard ? 1 : 2;
  return std::max(0, pool_level - offset);
}

double PoolDegradation::errorRateSince(uint64_t requests, uint64_t failures) {
  common::MutexLock lock(mu_);
  const bool first = !have_totals_;
  const uint64_t dr = requests - std::min(requests, last_requests_);
  const uint64_t df = failures - std::min(failures, last_failures_);
  last_requests_ = requests;
  last_failures_ = failures;
  have_totals_ = true;
  return first || dr == 0 ? 0.0 : std::min(1.0, static_cast<double>(df) / static_cast<double>(dr));
}

namespace {

// The level one signal asks for: n when at or past the n-th threshold.
template <typename List>
int levelFor(const List& thresholds, double value, bool strictly_above) {
  int level = 0;
  const int n = std::min(kMaxLevel, static_cast<int>(thresholds.size()));
  for (int i = 0; i < n; ++i) {
    const double t = static_cast<double>(thresholds.Get(i));
    if (strictly_above ? value > t : value >= t) level = i + 1;
  }
  return level;
}

// Whether a signal lets the level step down from `cur`: it has no
// threshold for `cur`, or it fell below that threshold × exit_ratio.
template <typename List>
bool calm(const List& thresholds, double value, int cur, double exit_ratio) {
  return cur > thresholds.size() || value < static_cast<double>(thresholds.Get(cur - 1)) * exit_ratio;
}

}  // namespace

bool PoolDegradation::evaluate(const v1::Degradation& s, const DegradationSignals& sig, int64_t now_ms) {
  signal_.store(sig.oldest_wait_ms, std::memory_order_relaxed);
  common::MutexLock lock(mu_);
  const int cur = automatic_.load(std::memory_order_relaxed);
  int want = 0;
  if (s.automatic()) {
    want = std::max({levelFor(s.wait_thresholds_ms(), sig.oldest_wait_ms, true),
                     levelFor(s.error_rate_thresholds(), sig.error_rate, false),
                     levelFor(s.unavailable_thresholds(), sig.unavailable, false), sig.refusing ? 1 : 0});
  }
  int next = cur;
  if (want > cur) {
    next = want;  // up at once
  } else if (cur > 0 && now_ms - changed_at_ms_ >= s.min_dwell_ms()) {
    const bool off = !s.automatic();
    const double r = s.exit_ratio();
    if (off || ((!sig.refusing || cur > 1) && calm(s.wait_thresholds_ms(), sig.oldest_wait_ms, cur, r) &&
                calm(s.error_rate_thresholds(), sig.error_rate, cur, r) &&
                calm(s.unavailable_thresholds(), sig.unavailable, cur, r))) {
      next = cur - 1;  // down one step
    }
  }
  if (next == cur) return false;
  automatic_.store(next, std::memory_order_relaxed);
  changed_at_ms_ = now_ms;
  changes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool PoolDegradation::raiseForRefusal(const v1::Degradation& s, int64_t now_ms) {
  if (!s.automatic() || pinned() >= 0) return false;
  common::MutexLock lock(mu_);
  if (automatic_.load(std::memory_order_relaxed) > 0) return false;
  automatic_.store(1, std::memory_order_relaxed);
  changed_at_ms_ = now_ms;
  changes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

namespace {

// Levels 1 and 2 have an answer or a rewrite for chat and completions only.
bool degradable(openai::Endpoint e) {
  return e == openai::Endpoint::kChatCompletions || e == openai::Endpoint::kCompletions;
}

}  // namespace

bool answerAtLevelOne(pipeline::RequestContext& ctx, const v1::Degradation& settings) {
  // Canned and stale answers exist for chat and completions only (an
  // embeddings or Responses request shed from the queue is shed, not given
  // a chat answer).
  if (!degradable(ctx.parsed.endpoint)) return false;
  // An expired cached answer within its grace comes first (cache stage).
  if (ctx.cache && ctx.cache->stale &&
      cache::answerFromEntry(ctx, *ctx.cache->stale, cache::Outcome::kStale, cache::Tier::kMemory)) {
    ctx.degraded = 1;
    ctx.cache->active = false;
    if (ctx.routes && ctx.routes->cache) ctx.routes->cache->count(cache::Outcome::kStale, cache::Tier::kMemory);
    common::strAppend(&ctx.response_headers, "x-spillway-degraded: 1\r\n");
    return true;
  }
  if (ctx.parsed.structured) return false;  // a canned text would break a caller that parses the answer
  for (const auto& a : settings.default_answers()) {
    if (!ctx.pool || a.model() != ctx.pool->model) continue;
    ctx.degraded = 1;
    if (ctx.cache) ctx.cache->active = false;  // never stored as the model's answer
    common::strAppend(&ctx.response_headers, "x-spillway-degraded: 1\r\n");
    ctx.answer_body = fixedAnswer(ctx.parsed, a.text());
    ctx.answer_content_type = ctx.parsed.stream ? "text/event-stream" : "application/json";
    return true;
  }
  return false;
}

DegradeStage::DegradeStage(const v1::Config& config)
    : settings_(config.degradation()), retry_after_(std::max<uint32_t>(1, config.server().retry_after_seconds())) {
  for (const auto& f : settings_.fallbacks()) fallbacks_[f.model()] = f.fallback_model();
}

pipeline::Verdict DegradeStage::process(pipeline::RequestContext& ctx) {
  if (!ctx.pool || !ctx.pool->degradation) return pipeline::Verdict::kContinue;
  const int level = classLevel(ctx.pool->degradation->level(), ctx.caller.priority);
  if (level == 0) return pipeline::Verdict::kContinue;

  if (level >= 3) {
    ctx.degraded = 3;
    ctx.drop = DropReason::kDegraded;
    ctx.retry_after_seconds = retry_after_;
    common::strAppend(&ctx.response_headers, "x-spillway-degraded: 3\r\n");
    ctx.error = openai::ApiError{429, "The service is busy. Please retry later.", "rate_limit_error", "", "degraded"};
    const std::string_view accept = ctx.headers ? (*ctx.headers)[boost::beast::http::field::accept] : "";
    if (accept.find("text/html") != std::string_view::npos) {
      ctx.answer_body = std::string(kBusyPage);
      ctx.answer_content_type = "text/html; charset=utf-8";
    }
    return pipeline::Verdict::kAnswered;
  }
  // A canned answer or a rewritten request exists only for chat and
  // completions: an embedding from a fallback model or a cut Responses
  // answer would be wrong, not cheaper. Other endpoints are served (or
  // queued and shed) as they are.
  if (!degradable(ctx.parsed.endpoint)) return pipeline::Verdict::kContinue;
  // Nor for a caller that parses the answer (tools, response_format): a
  // truncated JSON or a canned text breaks it, where a 429 does not. Served
  // as it came (or shed by the queue); only its own stale answer may stand in.
  if (ctx.parsed.structured) return pipeline::Verdict::kContinue;
  // An automatic level degrades only what the fleet cannot serve in time:
  // level 1's answer goes to the requests the queue refuses
  // (degradeInsteadOfShedding below, so who is degraded follows the
  // queue's fairness: a tenant over its share first), and level 2's cheaper
  // request only while requests wait. A pinned level is the operator's
  // call and applies to every request.
  if (ctx.pool->queue && ctx.pool->degradation->pinned() < 0) {
    if (level == 1 || ctx.pool->queue->waiting() == 0) return pipeline::Verdict::kContinue;
  }
  if (level == 1) {
    // Nothing cheaper to give: serve it.
    return answerAtLevelOne(ctx, settings_) ? pipeline::Verdict::kAnswered : pipeline::Verdict::kContinue;
  }
  // Level 2: a cheaper request.
  openai::Rewrite rw;
  if (auto it = fallbacks_.find(ctx.pool->model); it != fallbacks_.end()) {
    if (const pipeline::PoolRoute* fb = ctx.routes->find(it->second)) {
      ctx.pool = fb;
      rw.model = it->second;
    }
  }
  if (settings_.max_tokens_cap() > 0) rw.max_tokens_cap = settings_.max_tokens_cap();
  rw.system_instruction = settings_.brief_instruction();
  auto body = openai::rewriteRequest(ctx.body, rw);
  if (!body.ok()) return pipeline::Verdict::kContinue;  // validated already; serve it as it came
  ctx.rewritten_body = std::move(*body);
  if (ctx.parsed.max_tokens && rw.max_tokens_cap) ctx.parsed.max_tokens = std::min(*ctx.parsed.max_tokens, *rw.max_tokens_cap);
  ctx.degraded = 2;
  if (ctx.cache) ctx.cache->active = false;  // a different question now: neither looked up nor stored under the original's key
  common::strAppend(&ctx.response_headers, "x-spillway-degraded: 2\r\n");
  return pipeline::Verdict::kContinue;
}

bool answerDegraded(pipeline::RequestContext& ctx) {
  // Whatever its class: the refusal is decided, and while the pool is
  // degraded at all a canned or stale answer beats a 429 for every class
  // (the class offsets decide how soon served requests are cheapened). An
  // automatic level is raised by the refusal itself.
  const pipeline::PoolRoute& pool = *ctx.pool;
  if (!pool.degradation) return false;
  const v1::Degradation& settings = ctx.routes->config.degradation();
  if (pool.degradation->level() < 1 && pool.degradation->raiseForRefusal(settings, common::wallClockMs())) {
    spdlog::warn("pool {}: automatic degradation level 1 (the queue turns requests away)", pool.model);
  }
  if (pool.degradation->level() < 1) return false;
  cache::unmarkMiss(ctx);
  if (!answerAtLevelOne(ctx, settings)) return false;
  ctx.error.reset();
  ctx.drop = DropReason::kNone;
  return true;
}

bool degradeInsteadOfShedding(pipeline::RequestContext& ctx, DropReason reason) {
  if (reason != DropReason::kDeadline && reason != DropReason::kQueueFull) return false;
  if (!answerDegraded(ctx)) return false;
  if (ctx.pool->queue) ctx.pool->queue->uncountDrop(reason, ctx.caller.tenant);
  return true;
}

}  // namespace spillway::admission
