#include "cache/coalesce_stage.h"

#include "cache/cache_stage.h"
#include "cache/cache_state.h"
#include "common/strings.h"
#include "openai/openai.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::cache {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

bool CoalesceStage::waits(const pipeline::RequestContext& ctx) const { return ctx.cache && ctx.cache->active; }

void CoalesceStage::markMiss(pipeline::RequestContext& ctx) {
  cache_->count(Outcome::kMiss);
  ctx.response_headers += kMissHeader;
}

common::Awaitable<pipeline::Verdict> CoalesceStage::run(pipeline::RequestContext& ctx) {
  CacheState& c = *ctx.cache;
  if (!c.active) co_return pipeline::Verdict::kContinue;
  const auto settings = cache_->settings();
  if (settings->coalesce) {
    const Wanted want{ctx.parsed.endpoint, ctx.parsed.stream, ctx.parsed.include_usage};
    for (int round = 0; round < 3; ++round) {
      Coalescer::Joined joined = cache_->coalescer().join(c.key, want, settings->max_entry_bytes);
      if (joined.leader) {
        c.flight = joined.flight;
        c.lease = std::make_shared<FlightLease>(cache_, c.key, joined.flight);
        markMiss(ctx);
        co_return pipeline::Verdict::kContinue;
      }
      const Followed followed = co_await follow(ctx, *joined.flight);
      if (followed == Followed::kAnswered) co_return pipeline::Verdict::kAnswered;
    }
  }
  markMiss(ctx);
  co_return pipeline::Verdict::kContinue;
}

common::Awaitable<CoalesceStage::Followed> CoalesceStage::follow(pipeline::RequestContext& ctx, Flight& flight) {
  const auto& up = ctx.routes->config.upstream();
  const Wanted& led = flight.form();
  // Same form as the leader's: relayed live, chunk by chunk. Otherwise the
  // complete answer is replayed in this caller's form.
  const bool live = ctx.parsed.stream && led.stream && ctx.parsed.include_usage == led.include_usage;
  const auto idle = std::chrono::milliseconds(up.idle_timeout_ms());
  // Before the answer begins: as long as the leader may wait for a slot and
  // its first byte; after, as long as an upstream may pause.
  Clock::time_point deadline = (ctx.deadline == Clock::time_point::max() ? Clock::now() : ctx.deadline) +
                               std::chrono::milliseconds(up.first_byte_timeout_ms());
  const std::string headers = common::strCat(ctx.response_headers, "x-spillway-cache: coalesced\r\n");
  std::unique_ptr<upstream::ResponseSink> sink = ctx.channel->sink(headers, idle);
  // Ends the request here, answered in place.
  auto answered = [&ctx](int status, bool keep) {
    ctx.status = status;
    ctx.answered_in_place = true;
    ctx.keep_connection = keep;
    return Followed::kAnswered;
  };
  std::string all;
  size_t from = 0;
  for (;;) {
    Flight::View v = co_await flight.next(from, deadline);
    const bool timed_out = v.state == Flight::State::kRunning && v.bytes.empty();
    if (v.state == Flight::State::kFailed || timed_out) {
      if (!sink->started()) co_return Followed::kNotAnswered;
      const openai::ApiError e{502, "The shared upstream answer broke off.", "upstream_error", "",
                               "upstream_disconnected"};
      const std::string event = openai::sseData(openai::errorBody(e));
      co_await sink->abort(event);
      co_return answered(502, false);
    }
    from += v.bytes.size();
    if (live) {
      if (!sink->started()) {
        upstream::ResponseHead head;
        head.status = 200;
        head.reason = "OK";
        head.content_type = v.content_type;
        head.event_stream = true;
        // GCC 12: no co_await beside && / || or in ?: (named results instead).
        const bool sent = co_await sink->sendHead(head);
        if (!sent) co_return answered(499, false);
        ctx.first_byte = Clock::now();
      }
      if (!v.bytes.empty()) {
        const bool sent = co_await sink->sendBody(v.bytes);
        if (!sent) co_return answered(499, false);
      }
      deadline = Clock::now() + idle;
    } else {
      all += v.bytes;
    }
    if (v.state == Flight::State::kDone) break;
  }
  cache_->count(Outcome::kCoalesced);
  if (live) {
    const bool ended = co_await sink->sendEnd();
    co_return answered(ended ? 200 : 499, ended);
  }
  Entry entry;
  entry.form = led.stream ? streamForm(all) : Form::kJson;
  entry.body = std::move(all);
  if (!answerFromEntry(ctx, entry, Outcome::kCoalesced, Tier::kMemory)) co_return Followed::kNotAnswered;
  co_return Followed::kAnswered;
}

}  // namespace spillway::cache
