// Rate limits (GCRA, gcra.h) at five scopes: global, per API key, per
// client address, per model, per key × model; each scope may limit
// requests per second, requests per minute and tokens per minute. A request
// passes only if every bucket that applies has room; otherwise nothing is
// taken and it gets 429 rate_limit_exceeded with Retry-After. Tokens are
// charged at admission (prompt estimate + max_tokens, or
// limits.default_max_tokens) and corrected by the real usage when the
// response ends (AdmissionFeedback). Every answer carries OpenAI's
// x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers for the
// tightest bucket of each kind.
//
// The limiter's buckets outlive config applies that leave `limits` alone
// (the engine hands the limiter on), so an unrelated apply resets nothing.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "admission/gcra.h"
#include "common/mutex.h"
#include "pipeline/stage.h"
#include "spillway/v1/config.pb.h"
#include "upstream/fleet_share.h"

namespace spillway::admission {

class RateLimiter {
 public:
  // `share` (may be null): the replicas enforcing these limits together.
  // While Redis cannot decide, this replica enforces its share of each
  // limit (the limit ÷ replicas) instead of the whole.
  explicit RateLimiter(const v1::Limits& limits, std::shared_ptr<const upstream::FleetShare> share = nullptr);
  ~RateLimiter();
  const v1::Limits& limits() const { return limits_; }
  bool empty() const { return empty_; }

  struct Ask {
    std::string_view key;           // tenant of a known key, "" for none
    const v1::RateLimit* key_limits = nullptr;  // the key's own, when set
    std::string_view client_ip;
    std::string_view model;
    double tokens = 0;
  };
  struct Result {
    bool allowed = true;
    double retry_after_seconds = 0;
    bool has_requests = false, has_tokens = false;
    Gcra::Decision requests, tokens;  // the tightest of each kind
    TokenCharge charge;               // token buckets charged
  };
  Result check(const Ask& ask, int64_t now_ns);
  // The request's real token count is known: correct what was charged.
  static void reconcile(const TokenCharge& charge, double actual_tokens, int64_t now_ns);
  // Charges `tokens` more to the buckets a request was charged at admission
  // (a stream running past its budget), all or nothing; false when one of
  // them has no room. Redis decides where the charge went to Redis (and
  // when it does not answer, the local buckets alone did).
  static bool chargeMore(TokenCharge& charge, double tokens, int64_t now_ns);

  // For operators: the scopes with the least room now (top `n`).
  struct Usage {
    std::string scope;  // "global", "key:NAME", "ip:ADDR", "model:M", "key_model:NAME/M"
    double requests_remaining = -1, requests_limit = 0;
    double tokens_remaining = -1, tokens_limit = 0;
  };
  std::vector<Usage> usage(int64_t now_ns, size_t n) const;
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  // The shared limiter (limits.redis), or null.
  const RedisLimiter* redis() const { return redis_.get(); }
  // Decisions made locally because Redis did not answer.
  uint64_t fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }

 private:
  struct Buckets {
    std::shared_ptr<Gcra> rps, rpm, tpm;
  };
  static Buckets make(const v1::RateLimit& l);
  struct Scope {
    v1::RateLimit limit;
    mutable common::Mutex mu;
    std::unordered_map<std::string, Buckets> entries ABSL_GUARDED_BY(mu);
  };
  Buckets lookup(Scope& s, std::string_view name, const v1::RateLimit& limit, int64_t now_ns);

  const v1::Limits limits_;
  bool empty_ = true;
  Buckets global_;
  Scope per_key_, per_ip_, per_model_, per_key_model_;
  std::shared_ptr<RedisLimiter> redis_;
  std::shared_ptr<const upstream::FleetShare> share_;
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> fallbacks_{0};
};

class RateLimitStage final : public pipeline::Stage {
 public:
  explicit RateLimitStage(std::shared_ptr<RateLimiter> limiter) : limiter_(std::move(limiter)) {}
  std::string_view name() const override { return "rate_limit"; }
  pipeline::Verdict process(pipeline::RequestContext& ctx) override;
  // Streams with token limits are metered as they flow (token_meter.h).
  upstream::ResponseSink& wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink& next,
                                   pipeline::SinkChain& chain) override;

 private:
  std::shared_ptr<RateLimiter> limiter_;
};

bool hasLimit(const v1::RateLimit& l);
// OpenAI's reset format: "20ms", "1s", "6m0s".
std::string resetText(double seconds);

}  // namespace spillway::admission
