#include "cache/fill_sink.h"

#include "common/clock.h"

namespace spillway::cache {

void FillSink::storeAnswer(bool event_stream) {
  if (!target_.store) return;
  auto e = std::make_shared<Entry>();
  e->key = target_.key;
  e->model = target_.model;
  e->tenant = target_.tenant;
  e->form = event_stream ? streamForm(body_) : Form::kJson;
  e->created_ms = cache_.nowMs();
  e->expires_ms = e->created_ms;  // each tier sets its own TTL
  e->body = std::move(body_);
  cache_.store(std::move(e));
}

common::Awaitable<bool> FillSink::sendWhole(const upstream::ResponseHead& head, std::string_view body) {
  if (head.status == 200 && body.size() <= target_.max_entry_bytes) {
    if (flight_) {
      flight_->begin(head.content_type);
      flight_->append(body);
      flight_->finish();
    }
    body_.assign(body);
    storeAnswer(head.event_stream);
  } else if (flight_) {
    flight_->fail();
  }
  const bool sent = co_await client_.sendWhole(head, body);
  co_return sent;
}

common::Awaitable<bool> FillSink::sendHead(const upstream::ResponseHead& head) {
  recording_ = head.status == 200;
  event_stream_ = head.event_stream;
  if (flight_) {
    if (recording_) {
      flight_->begin(head.content_type);
    } else {
      flight_->fail();
    }
  }
  // GCC 12: co_await neither in a condition nor beside && / || (it emits a
  // trap for such coroutines): named results instead.
  const bool sent = co_await client_.sendHead(head);
  if (!sent) client_gone_ = true;
  const bool go_on = !client_gone_ || recording_;
  co_return go_on;
}

common::Awaitable<bool> FillSink::sendBody(std::string_view bytes) {
  if (recording_) {
    if (body_.size() + bytes.size() > target_.max_entry_bytes) {
      // Too large to keep: neither stored nor shared.
      recording_ = false;
      body_.clear();
      if (flight_) flight_->fail();
    } else {
      body_.append(bytes);
      if (flight_) flight_->append(bytes);
    }
  }
  if (!client_gone_) {
    const bool sent = co_await client_.sendBody(bytes);
    if (!sent) client_gone_ = true;
  }
  // Without a client, read on only while the answer is being kept.
  const bool go_on = !client_gone_ || recording_;
  co_return go_on;
}

common::Awaitable<bool> FillSink::sendEnd() {
  if (recording_) {
    if (flight_) flight_->finish();
    storeAnswer(event_stream_);
    recording_ = false;
  }
  if (client_gone_) co_return false;
  const bool ended = co_await client_.sendEnd();
  co_return ended;
}

common::Awaitable<void> FillSink::abort(std::string_view sse_error_event) {
  recording_ = false;
  body_.clear();
  if (flight_) flight_->fail();
  if (!client_gone_) co_await client_.abort(sse_error_event);
}

}  // namespace spillway::cache
