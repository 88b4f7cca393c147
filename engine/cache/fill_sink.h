// The sink a cache miss's upstream answer goes through: it relays to the
// client as before, copies the answer into the request's Flight (the
// coalesced waiters read it there) and, when the answer is complete and a
// 200, stores it in the cache. An answer that broke off, an error, or one
// larger than cache.max_entry_bytes is never stored.
//
// When the client goes away mid-answer, the sink keeps reading the
// upstream to the end (answers are bounded by max_tokens) so the waiters
// get their answer and the cache its entry; the exchange then reports the
// client gone.
#pragma once

#include "cache/response_cache.h"
#include "upstream/response_sink.h"

namespace spillway::cache {

struct FillTarget {
  CacheKey key;
  std::string model;
  std::string tenant;
  bool store = true;  // false: Cache-Control: no-store (still shared with waiters)
  size_t max_entry_bytes = 1 << 20;  // larger answers are neither stored nor shared
};

class FillSink final : public upstream::ResponseSink {
 public:
  FillSink(upstream::ResponseSink& client, ResponseCache& cache, const FillTarget& target, Flight* flight)
      : client_(client), cache_(cache), target_(target), flight_(flight) {}

  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override;
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override;
  common::Awaitable<bool> sendBody(std::string_view bytes) override;
  common::Awaitable<bool> sendEnd() override;
  common::Awaitable<void> abort(std::string_view sse_error_event) override;
  bool started() const override { return client_.started() || client_gone_; }

 private:
  void storeAnswer(bool event_stream);

  upstream::ResponseSink& client_;
  ResponseCache& cache_;
  const FillTarget target_;
  Flight* flight_;  // null when not coalescing
  bool recording_ = false;  // a 200 whose bytes are being kept
  bool event_stream_ = false;
  bool client_gone_ = false;
  std::string body_;
};

}  // namespace spillway::cache
