// The Responses API's stage (before route): a request that continues a
// stored response (previous_response_id), or reads, deletes or cancels one
// (/v1/responses/{id}), goes to the backend that stores it.
//
//   previous_response_id, owner known and serving the pool  → pinned there
//   owner known but drained, down, or no longer in the pool  → balanced as
//       usual, marked x-spillway-affinity: lost (the server it reaches
//       answers for itself, typically 400/404 previous_response_not_found)
//   owner unknown (expired, or created before this gateway)  → balanced
//   /v1/responses/{id}: owner known → there (its pool's model, pinned);
//       unknown → 404 response_not_found; unavailable → 503 with Retry-After
//
// Its sink (ResponseSink) learns owners from answers: the id of every
// response created (the first "id" of a JSON answer or of the stream's
// response.created event), forgets an id deleted with 200, marks the first
// output delta of a stream (time to first token) and reads the output
// tokens of response.completed (usage reconciled with the limits).
#pragma once

#include <memory>
#include <string>

#include "pipeline/stage.h"
#include "responses/response_owners.h"
#include "upstream/response_sink.h"

namespace spillway::pipeline {
struct RequestContext;
}

namespace spillway::responses {

class ResponseAffinityStage final : public pipeline::Stage {
 public:
  explicit ResponseAffinityStage(std::shared_ptr<ResponseOwners> owners) : owners_(std::move(owners)) {}
  std::string_view name() const override { return "response_affinity"; }
  pipeline::Verdict process(pipeline::RequestContext& ctx) override;
  upstream::ResponseSink& wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink& next,
                                   pipeline::SinkChain& chain) override;

 private:
  pipeline::Verdict byId(pipeline::RequestContext& ctx);
  std::shared_ptr<ResponseOwners> owners_;
};

// Reads a Responses answer on its way to the client (see the top).
class ResponseSink final : public upstream::ResponseSink {
 public:
  ResponseSink(upstream::ResponseSink& next, ResponseOwners& owners, pipeline::RequestContext& ctx);

  common::Awaitable<bool> sendWhole(const upstream::ResponseHead& head, std::string_view body) override;
  common::Awaitable<bool> sendHead(const upstream::ResponseHead& head) override;
  common::Awaitable<bool> sendBody(std::string_view bytes) override;
  common::Awaitable<bool> sendEnd() override { return next_.sendEnd(); }
  common::Awaitable<void> abort(std::string_view sse_error_event) override { return next_.abort(sse_error_event); }
  bool started() const override { return next_.started(); }

 private:
  void onHead(const upstream::ResponseHead& head);
  void scan(std::string_view bytes);

  upstream::ResponseSink& next_;
  ResponseOwners& owners_;
  pipeline::RequestContext& ctx_;
  bool reading_ = false;  // a 200 of a POST /v1/responses
  bool id_found_ = false;
  bool completed_seen_ = false;
  std::string window_;  // the end of the bytes so far, for markers split across reads
};

// The first JSON string value of key "id" in `text`, if any.
std::string_view firstId(std::string_view text);

}  // namespace spillway::responses
