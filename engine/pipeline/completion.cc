#include "pipeline/completion.h"

#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::pipeline {

void BackendFeedback::onComplete(const RequestContext& ctx) {
  if (!ctx.backend) return;
  const double seconds = std::chrono::duration<double>(RequestContext::Clock::now() - ctx.start).count();
  const bool failed = ctx.status >= 500;
  ctx.backend->recordOutcome(failed, seconds, ctx.output_tokens);
  if (ctx.pool) ctx.pool->balancer->onComplete({ctx.backend.get(), seconds, ctx.output_tokens, failed});
}

std::string_view addedHeader(const RequestContext& ctx, std::string_view name) {
  const std::string_view lines = ctx.response_headers;
  for (size_t at = 0; at < lines.size();) {
    const size_t end = lines.find("\r\n", at);
    const std::string_view line = lines.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.size() > name.size() && line.substr(0, name.size()) == name && line[name.size()] == ':') {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return v;
    }
    if (end == std::string_view::npos) break;
    at = end + 2;
  }
  return {};
}

}  // namespace spillway::pipeline
