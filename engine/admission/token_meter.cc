#include "admission/token_meter.h"

#include <chrono>

#include "admission/rate_limit.h"
#include "openai/openai.h"
#include "upstream/exchange.h"

namespace spillway::admission {

namespace {

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool TokenMeter::extend() {
  if (!RateLimiter::chargeMore(charge_, kBlockTokens, nowNs())) return false;
  budget_ += kBlockTokens;
  return true;
}

common::Awaitable<bool> TokenMeter::sendWhole(const upstream::ResponseHead& head, std::string_view body) {
  // A whole answer's usage is charged when it ends (AdmissionFeedback).
  const bool sent = co_await inner_.sendWhole(head, body);
  co_return sent;
}

common::Awaitable<bool> TokenMeter::sendHead(const upstream::ResponseHead& head) {
  metering_ = head.status == 200 && head.event_stream;
  const bool sent = co_await inner_.sendHead(head);
  co_return sent;
}

common::Awaitable<bool> TokenMeter::sendBody(std::string_view bytes) {
  if (metering_ && !overrun_) {
    tokens_ += upstream::countDataEvents(bytes);
    while (tokens_ > budget_) {
      if (extend()) continue;
      if (!cut_policy_) {
        overrun_ = true;  // finish; the final usage is charged at the end
        break;
      }
      // GCC 12: named locals around co_await (see ARCHITECTURE).
      was_cut_ = true;
      const openai::ApiError e{429, "This stream ran through its token budget (tokens per minute) and was cut.",
                               "rate_limit_error", "", "rate_limit_exceeded"};
      const std::string event = openai::sseData(openai::errorBody(e));
      co_await inner_.abort(event);
      co_return false;
    }
  }
  const bool sent = co_await inner_.sendBody(bytes);
  co_return sent;
}

common::Awaitable<bool> TokenMeter::sendEnd() {
  const bool ended = co_await inner_.sendEnd();
  co_return ended;
}

common::Awaitable<void> TokenMeter::abort(std::string_view sse_error_event) { co_await inner_.abort(sse_error_event); }

}  // namespace spillway::admission
