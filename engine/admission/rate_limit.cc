#include "admission/rate_limit.h"

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cmath>

#include "admission/priority.h"
#include "admission/token_meter.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "common/url.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"

namespace spillway::admission {

namespace {
constexpr int64_t kSecond = 1'000'000'000;
constexpr size_t kMaxEntries = 100'000;  // per scope; idle (full) buckets are forgotten beyond it

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool hasLimit(const v1::RateLimit& l) {
  return l.requests_per_second() || l.requests_per_minute() || l.tokens_per_minute();
}

std::string resetText(double seconds) {
  if (seconds < 1) return common::strCat(static_cast<int64_t>(std::ceil(seconds * 1000)), "ms");
  const int64_t s = static_cast<int64_t>(std::ceil(seconds));
  if (s < 60) return common::strCat(s, "s");
  return common::strCat(s / 60, "m", s % 60, "s");
}

RateLimiter::Buckets RateLimiter::make(const v1::RateLimit& l) {
  Buckets b;
  if (l.requests_per_second()) b.rps = std::make_shared<Gcra>(l.requests_per_second(), kSecond);
  if (l.requests_per_minute()) b.rpm = std::make_shared<Gcra>(l.requests_per_minute(), 60 * kSecond);
  if (l.tokens_per_minute()) b.tpm = std::make_shared<Gcra>(static_cast<double>(l.tokens_per_minute()), 60 * kSecond);
  return b;
}

RateLimiter::RateLimiter(const v1::Limits& limits, std::shared_ptr<const upstream::FleetShare> share)
    : limits_(limits), share_(std::move(share)) {
  global_ = make(limits.global());
  per_key_.limit = limits.per_key();
  per_ip_.limit = limits.per_client_ip();
  per_model_.limit = limits.per_model();
  per_key_model_.limit = limits.per_key_model();
  empty_ = !hasLimit(limits.global()) && !hasLimit(limits.per_key()) && !hasLimit(limits.per_client_ip()) &&
           !hasLimit(limits.per_model()) && !hasLimit(limits.per_key_model());
  for (const auto& k : limits.keys()) empty_ = empty_ && !hasLimit(k.limits());
  if (!limits.redis().address().empty()) {
    RedisLimiter::Settings rs;
    rs.link = common::RedisLink::at(limits.redis().address(), std::chrono::milliseconds(limits.redis().timeout_ms()));
    rs.key_prefix = limits.redis().key_prefix();
    redis_ = std::make_shared<RedisLimiter>(rs);
  }
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Buckets RateLimiter::lookup(Scope& s, std::string_view name, const v1::RateLimit& limit, int64_t now_ns) {
  common::MutexLock lock(s.mu);
  auto it = s.entries.find(std::string(name));
  if (it != s.entries.end()) return it->second;
  if (s.entries.size() >= kMaxEntries) {
    std::erase_if(s.entries, [&](const auto& e) {
      const Buckets& b = e.second;
      return (!b.rps || b.rps->idle(now_ns)) && (!b.rpm || b.rpm->idle(now_ns)) && (!b.tpm || b.tpm->idle(now_ns));
    });
  }
  return s.entries.emplace(std::string(name), make(limit)).first->second;
}

RateLimiter::Result RateLimiter::check(const Ask& ask, int64_t now_ns) {
  Result r;
  if (empty_) return r;
  // Every bucket that applies. Redis key names ("k:alice:rpm") are built
  // only when Redis decides.
  struct Applied {
    std::string_view scope;  // "g", "k:", "km:", "ip:", "m:"
    std::string_view name;
    Buckets b;
  };
  boost::container::small_vector<Applied, 5> all;
  all.push_back({"g", {}, global_});
  std::string key_model;  // owns the key × model scope's name
  if (!ask.key.empty()) {
    const v1::RateLimit& kl = ask.key_limits && hasLimit(*ask.key_limits) ? *ask.key_limits : per_key_.limit;
    if (hasLimit(kl)) all.push_back({"k:", ask.key, lookup(per_key_, ask.key, kl, now_ns)});
    if (hasLimit(per_key_model_.limit)) {
      key_model = common::strCat(ask.key, "/", ask.model);
      all.push_back({"km:", key_model, lookup(per_key_model_, key_model, per_key_model_.limit, now_ns)});
    }
  }
  if (hasLimit(per_ip_.limit) && !ask.client_ip.empty()) {
    all.push_back({"ip:", ask.client_ip, lookup(per_ip_, ask.client_ip, per_ip_.limit, now_ns)});
  }
  if (hasLimit(per_model_.limit)) all.push_back({"m:", ask.model, lookup(per_model_, ask.model, per_model_.limit, now_ns)});
  struct One {
    const std::shared_ptr<Gcra>* g;  // into `all`, alive for this call
    const Applied* scope;
    std::string_view kind;
    double cost;
    bool tokens;
  };
  boost::container::small_vector<One, 8> ones;
  for (const auto& a : all) {
    if (a.b.rps) ones.push_back({&a.b.rps, &a, "rps", 1, false});
    if (a.b.rpm) ones.push_back({&a.b.rpm, &a, "rpm", 1, false});
    if (a.b.tpm) ones.push_back({&a.b.tpm, &a, "tpm", ask.tokens, true});
  }
  auto note = [&](bool tokens, const Gcra::Decision& d) {
    bool& has = tokens ? r.has_tokens : r.has_requests;
    Gcra::Decision& best = tokens ? r.tokens : r.requests;
    if (!has || d.remaining < best.remaining) best = d;
    has = true;
  };

  if (redis_) {
    std::vector<RedisLimiter::Bucket> buckets;
    for (const auto& o : ones) {
      buckets.push_back({common::strCat(o.scope->scope, o.scope->name, ":", o.kind), (*o.g)->amount(),
                         (*o.g)->periodNs() / 1000, o.cost});
    }
    if (auto shared = redis_->take(buckets)) {
      if (!shared->allowed) {
        r.allowed = false;
        r.retry_after_seconds = shared->retry_after_seconds;
        const One& denied = ones[shared->denied];
        note(denied.tokens, (*denied.g)->describeBacklog((*denied.g)->periodNs(), false));
        refused_.fetch_add(1, std::memory_order_relaxed);
        return r;
      }
      for (size_t i = 0; i < ones.size(); ++i) {
        // This replica's own share, kept locally too: what the operator
        // sees, and where a fallback starts from.
        (*ones[i].g)->adjust(ones[i].cost, now_ns);
        const int64_t backlog = i < shared->backlog_us.size() ? static_cast<int64_t>(shared->backlog_us[i] * 1000) : 0;
        note(ones[i].tokens, (*ones[i].g)->describeBacklog(backlog, true));
        if (ones[i].tokens) r.charge.redis_buckets.push_back(buckets[i]);
      }
      r.charge.redis = redis_;
      r.charge.tokens = ask.tokens;
      return r;
    }
    fallbacks_.fetch_add(1, std::memory_order_relaxed);  // Redis did not answer: decide here
  }

  // Local buckets: the whole limit on its own; with Redis configured but
  // not answering, this replica's share of it (each unit weighs as many as
  // there are replicas), so the fleet together stays within the limit.
  const double scale = redis_ && share_ ? share_->replicas() : 1;
  boost::container::small_vector<std::pair<Gcra*, double>, 8> taken;
  for (const auto& o : ones) {
    Gcra::Decision d = (*o.g)->take(o.cost * scale, now_ns);
    d.limit /= scale;
    d.remaining /= scale;
    note(o.tokens, d);
    if (!d.allowed) {
      r.allowed = false;
      r.retry_after_seconds = d.retry_after_seconds;
      break;
    }
    taken.emplace_back(o.g->get(), o.cost * scale);
    if (o.tokens) r.charge.buckets.push_back(*o.g);
  }
  r.charge.scale = scale;
  if (!r.allowed) {
    for (const auto& [g, cost] : taken) g->adjust(-cost, now_ns);  // all or nothing
    r.charge = {};
    refused_.fetch_add(1, std::memory_order_relaxed);
  } else {
    r.charge.tokens = ask.tokens;
  }
  return r;
}

bool RateLimiter::chargeMore(TokenCharge& charge, double tokens, int64_t now_ns) {
  boost::container::small_vector<Gcra*, 8> taken;
  auto giveBack = [&] {
    for (Gcra* g : taken) g->adjust(-tokens * charge.scale, now_ns);  // all or nothing
  };
  for (const auto& g : charge.buckets) {
    if (!g->take(tokens * charge.scale, now_ns).allowed) {
      giveBack();
      return false;
    }
    taken.push_back(g.get());
  }
  if (charge.redis && !charge.redis_buckets.empty()) {
    std::vector<RedisLimiter::Bucket> more = charge.redis_buckets;
    for (auto& b : more) b.cost = tokens;
    if (auto r = charge.redis->take(more); r && !r->allowed) {
      giveBack();
      return false;
    }
  }
  charge.tokens += tokens;
  return true;
}

void RateLimiter::reconcile(const TokenCharge& charge, double actual_tokens, int64_t now_ns) {
  const double delta = actual_tokens - charge.tokens;
  if (delta == 0) return;
  for (const auto& g : charge.buckets) g->adjust(delta * charge.scale, now_ns);
  if (charge.redis && !charge.redis_buckets.empty()) {
    std::vector<RedisLimiter::Bucket> adjust = charge.redis_buckets;
    for (auto& b : adjust) b.cost = delta;
    charge.redis->adjust(adjust);
  }
}

std::vector<RateLimiter::Usage> RateLimiter::usage(int64_t now_ns, size_t n) const {
  std::vector<Usage> out;
  auto add = [&](std::string scope, const Buckets& b) {
    Usage u;
    u.scope = std::move(scope);
    for (const auto* g : {b.rps.get(), b.rpm.get()}) {
      if (!g) continue;
      const auto d = g->peek(now_ns);
      if (u.requests_remaining < 0 || d.remaining / d.limit < u.requests_remaining / u.requests_limit) {
        u.requests_remaining = d.remaining;
        u.requests_limit = d.limit;
      }
    }
    if (b.tpm) {
      const auto d = b.tpm->peek(now_ns);
      u.tokens_remaining = d.remaining;
      u.tokens_limit = d.limit;
    }
    if (u.requests_limit > 0 || u.tokens_limit > 0) out.push_back(std::move(u));
  };
  add("global", global_);
  auto scope = [&](const Scope& s, std::string_view prefix) {
    common::MutexLock lock(s.mu);
    for (const auto& [name, b] : s.entries) add(common::strCat(prefix, name), b);
  };
  scope(per_key_, "key:");
  scope(per_ip_, "ip:");
  scope(per_model_, "model:");
  scope(per_key_model_, "key_model:");
  auto used = [](const Usage& u) {
    double f = 0;
    if (u.requests_limit > 0) f = std::max(f, 1 - u.requests_remaining / u.requests_limit);
    if (u.tokens_limit > 0) f = std::max(f, 1 - u.tokens_remaining / u.tokens_limit);
    return f;
  };
  std::sort(out.begin(), out.end(), [&](const Usage& a, const Usage& b) { return used(a) > used(b); });
  if (out.size() > n) out.resize(n);
  return out;
}

pipeline::Verdict RateLimitStage::process(pipeline::RequestContext& ctx) {
  if (limiter_->empty()) return pipeline::Verdict::kContinue;
  const auto& limits = limiter_->limits();
  const uint32_t max_tokens = ctx.parsed.max_tokens ? *ctx.parsed.max_tokens : limits.default_max_tokens();
  RateLimiter::Ask ask;
  if (ctx.caller.key_known) {  // authenticate found it: its tenant and limits
    ask.key = ctx.caller.tenant;
    ask.key_limits = ctx.caller.key_limits;
  }
  if (hasLimit(limits.per_client_ip())) ask.client_ip = pipeline::clientAddress(ctx);
  ask.model = ctx.parsed.model;
  // Tokens per endpoint: a completion its prompt and output budget, an
  // embedding its input alone, a passthrough route or a stored response
  // nothing (they are limited by request count).
  switch (ctx.parsed.endpoint) {
    case openai::Endpoint::kEmbeddings: ask.tokens = static_cast<double>(ctx.prompt_tokens_estimate); break;
    case openai::Endpoint::kPassthrough:
    case openai::Endpoint::kResponseById: ask.tokens = 0; break;
    default: ask.tokens = static_cast<double>(ctx.prompt_tokens_estimate) + max_tokens;
  }
  const int64_t now = nowNs();
  RateLimiter::Result r = limiter_->check(ask, now);
  if (r.has_requests) {
    common::strAppend(&ctx.response_headers, "x-ratelimit-limit-requests: ", static_cast<int64_t>(r.requests.limit),
                      "\r\nx-ratelimit-remaining-requests: ", static_cast<int64_t>(r.requests.remaining),
                      "\r\nx-ratelimit-reset-requests: ", resetText(r.requests.reset_seconds), "\r\n");
  }
  if (r.has_tokens) {
    common::strAppend(&ctx.response_headers, "x-ratelimit-limit-tokens: ", static_cast<int64_t>(r.tokens.limit),
                      "\r\nx-ratelimit-remaining-tokens: ", static_cast<int64_t>(r.tokens.remaining),
                      "\r\nx-ratelimit-reset-tokens: ", resetText(r.tokens.reset_seconds), "\r\n");
  }
  if (!r.allowed) {
    ctx.retry_after_seconds = static_cast<uint32_t>(std::max(1.0, std::ceil(r.retry_after_seconds)));
    ctx.drop = DropReason::kRateLimited;
    ctx.error = openai::ApiError{429,
                                 common::strCat("Rate limit reached for ", ctx.caller.tenant.empty() ? "this caller" : ctx.caller.tenant,
                                                " on `", ctx.parsed.model, "`. Please try again in ",
                                                resetText(r.retry_after_seconds), "."),
                                 "rate_limit_error", "", "rate_limit_exceeded"};
    return pipeline::Verdict::kAnswered;
  }
  if (!r.charge.buckets.empty() || !r.charge.redis_buckets.empty()) {
    ctx.token_charge = std::make_shared<TokenCharge>(std::move(r.charge));
  }
  return pipeline::Verdict::kContinue;
}

upstream::ResponseSink& RateLimitStage::wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink& next,
                                                 pipeline::SinkChain& chain) {
  if (!ctx.parsed.stream || !ctx.token_charge) return next;
  const double output_budget = ctx.token_charge->tokens - static_cast<double>(ctx.prompt_tokens_estimate);
  const bool cut_overruns = limiter_->limits().stream_overrun() == "cut";
  return chain.add<TokenMeter>(next, *ctx.token_charge, output_budget, cut_overruns, ctx.cut_by_sink);
}

}  // namespace spillway::admission
