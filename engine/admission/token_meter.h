// Tokens per minute for streams, counted as they flow. A stream was charged
// at admission for its prompt and its output budget (max_tokens, or
// limits.default_max_tokens). This sink, between the upstream exchange and
// the client (and the cache's fill), counts the stream's tokens (SSE data
// events); past the budget it charges the request's token buckets 16
// tokens at a time. When a bucket has no room left, limits.stream_overrun
// decides: "finish" lets the stream run to its end (the final usage is
// charged anyway, the bucket goes into debt) and "cut" ends it at once
// with an SSE error event (rate_limit_exceeded), without [DONE].
//
// Runs on the request's worker thread; the buckets are thread-safe.
#pragma once

#include "admission/gcra.h"
#include "upstream/response_sink.h"

namespace spillway::admission {

class TokenMeter final : public upstream::ResponseSink {
 public:
  static constexpr double kBlockTokens = 16;

  // `charge`: the buckets charged at admission (extended here as the stream
  // runs past `budget_tokens` of output). `cut`: end an overrun the buckets
  // cannot absorb; `was_cut` is set when it does (the request's
  // RequestContext::cut_by_sink).
  TokenMeter(upstream::ResponseSink& inner, TokenCharge& charge, double budget_tokens, bool cut, bool& was_cut)
      : inner_(inner), charge_(charge), budget_(budget_tokens), cut_policy_(cut), was_cut_(was_cut) {}

  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override;
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override;
  common::Awaitable<bool> sendBody(std::string_view bytes) override;
  common::Awaitable<bool> sendEnd() override;
  common::Awaitable<void> abort(std::string_view sse_error_event) override;
  bool started() const override { return inner_.started(); }

 private:
  // Charges one more block (RateLimiter::chargeMore); false when a bucket
  // has no room.
  bool extend();

  upstream::ResponseSink& inner_;
  TokenCharge& charge_;
  double budget_;
  const bool cut_policy_;
  bool metering_ = false;  // a 200 event stream
  bool overrun_ = false;   // past the budget with no room: finishing in debt
  bool& was_cut_;
  double tokens_ = 0;
};

}  // namespace spillway::admission
