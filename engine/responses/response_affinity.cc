#include "responses/response_affinity.h"

#include <charconv>

#include "common/strings.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::responses {

namespace {

using Clock = std::chrono::steady_clock;

// The backend named `name` if it is in the routing table.
const upstream::BackendPtr* findBackend(const pipeline::RouteTable& routes, const std::string& name) {
  for (const auto& b : routes.backends) {
    if (b->name() == name) return &b;
  }
  return nullptr;
}

void pin(pipeline::RequestContext& ctx, const upstream::Backend* b) {
  ctx.pin = b;
  ctx.placement = std::span<const upstream::Backend* const>(&ctx.pin, 1);
}

}  // namespace

std::string_view firstId(std::string_view text) {
  constexpr std::string_view kKey = "\"id\"";
  for (size_t at = text.find(kKey); at != std::string_view::npos; at = text.find(kKey, at + kKey.size())) {
    size_t i = at + kKey.size();
    while (i < text.size() && (text[i] == ' ' || text[i] == ':' || text[i] == '\n' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != '"') continue;
    const size_t end = text.find('"', i + 1);
    if (end == std::string_view::npos) return {};
    return text.substr(i + 1, end - i - 1);
  }
  return {};
}

pipeline::Verdict ResponseAffinityStage::byId(pipeline::RequestContext& ctx) {
  const std::string id(ctx.response_id);
  const std::optional<std::string> owner = owners_->owner(id);
  const upstream::BackendPtr* b = owner ? findBackend(*ctx.routes, *owner) : nullptr;
  const pipeline::PoolRoute* pool = nullptr;
  if (b) {
    for (const auto& [model, p] : ctx.routes->pools) {
      if (p.uses(**b)) {
        pool = &p;
        break;
      }
    }
  }
  if (!pool) {
    ctx.error = openai::ApiError{404,
                                 common::strCat("No response with id '", id,
                                                "' is known to this gateway: it was not created through it, or it "
                                                "was created longer ago than api.response_affinity_ttl_seconds."),
                                 "invalid_request_error", "", "response_not_found"};
    return pipeline::Verdict::kAnswered;
  }
  if (!(*b)->available()) {
    ctx.error = openai::ApiError{503,
                                 common::strCat("The backend that stores response '", id, "' (", (*b)->name(),
                                                ") is not available now."),
                                 "server_error", "", "backend_unavailable"};
    ctx.retry_after_seconds = std::max<uint32_t>(1, ctx.routes->config.server().retry_after_seconds());
    return pipeline::Verdict::kAnswered;
  }
  ctx.parsed.model = pool->model;
  pin(ctx, b->get());
  return pipeline::Verdict::kContinue;
}

pipeline::Verdict ResponseAffinityStage::process(pipeline::RequestContext& ctx) {
  if (ctx.parsed.endpoint == openai::Endpoint::kResponseById) return byId(ctx);
  if (ctx.parsed.endpoint != openai::Endpoint::kResponses || ctx.parsed.previous_response_id.empty()) {
    return pipeline::Verdict::kContinue;
  }
  const std::optional<std::string> owner = owners_->owner(ctx.parsed.previous_response_id);
  if (!owner) {
    owners_->count(ResponseOwners::Routed::kUnknown);
    return pipeline::Verdict::kContinue;
  }
  const upstream::BackendPtr* b = findBackend(*ctx.routes, *owner);
  const pipeline::PoolRoute* pool = ctx.routes->find(ctx.parsed.model);
  if (!b || !pool || !pool->uses(**b) || !(*b)->available()) {
    owners_->count(ResponseOwners::Routed::kLost);
    ctx.response_headers += "x-spillway-affinity: lost\r\n";
    return pipeline::Verdict::kContinue;
  }
  owners_->count(ResponseOwners::Routed::kPinned);
  pin(ctx, b->get());
  return pipeline::Verdict::kContinue;
}

upstream::ResponseSink& ResponseAffinityStage::wrapSink(pipeline::RequestContext& ctx, upstream::ResponseSink& next,
                                                        pipeline::SinkChain& chain) {
  const bool create = ctx.parsed.endpoint == openai::Endpoint::kResponses;
  const bool remove = ctx.parsed.endpoint == openai::Endpoint::kResponseById && ctx.method == "DELETE";
  if (!create && !remove) return next;
  return chain.add<ResponseSink>(next, *owners_, ctx);
}

ResponseSink::ResponseSink(upstream::ResponseSink& next, ResponseOwners& owners, pipeline::RequestContext& ctx)
    : next_(next), owners_(owners), ctx_(ctx) {}

void ResponseSink::onHead(const upstream::ResponseHead& head) {
  if (head.status != 200) return;
  if (ctx_.parsed.endpoint == openai::Endpoint::kResponseById) {
    owners_.forget(ctx_.response_id);  // deleted
    return;
  }
  reading_ = true;
}

void ResponseSink::scan(std::string_view bytes) {
  if (!reading_) return;
  // Markers may straddle two reads: search the end of the last read too.
  constexpr size_t kKeep = 256;
  std::string text = window_;
  text.append(bytes);
  if (!id_found_) {
    // The response's own id comes first: in a JSON answer and in the
    // stream's response.created event alike. Look no further than 8 KiB.
    const std::string_view id = firstId(text);
    if (!id.empty()) {
      owners_.remember(id, ctx_.backend ? ctx_.backend->name() : std::string());
      id_found_ = true;
    } else if (text.size() > 8192) {
      id_found_ = true;  // none: give up
    }
  }
  if (ctx_.parsed.stream) {
    if (!ctx_.first_token && text.find("response.output_text.delta") != std::string::npos) ctx_.first_token = Clock::now();
    if (!completed_seen_ && text.find("\"response.completed\"") != std::string::npos) completed_seen_ = true;
    if (completed_seen_ && !ctx_.reported_output_tokens) {
      constexpr std::string_view kKey = "\"output_tokens\":";
      const size_t at = text.rfind(kKey);
      if (at != std::string::npos) {
        size_t i = at + kKey.size();
        while (i < text.size() && text[i] == ' ') ++i;
        uint32_t n = 0;
        const auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
        // A number cut by the read's end is read again with the next one.
        if (ec == std::errc() && end != text.data() + text.size()) ctx_.reported_output_tokens = n;
      }
    }
  }
  window_ = text.size() > kKeep ? text.substr(text.size() - kKeep) : text;
  if (id_found_ && !ctx_.parsed.stream) reading_ = false;
}

common::Awaitable<bool> ResponseSink::sendWhole(const upstream::ResponseHead& head, std::string_view body) {
  onHead(head);
  scan(body.substr(0, 8192));
  reading_ = false;
  return next_.sendWhole(head, body);
}

common::Awaitable<bool> ResponseSink::sendHead(const upstream::ResponseHead& head) {
  onHead(head);
  return next_.sendHead(head);
}

common::Awaitable<bool> ResponseSink::sendBody(std::string_view bytes) {
  scan(bytes);
  return next_.sendBody(bytes);
}

}  // namespace spillway::responses
