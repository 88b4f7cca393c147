#include "admission/authenticate.h"

#include <charconv>
#include <optional>

#include "admission/priority.h"
#include "common/sha256.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::admission {

AuthenticateStage::AuthenticateStage(const v1::Config& config) {
  const auto& limits = config.limits();
  required_ = limits.require_key();
  for (const auto& k : limits.keys()) {
    Key key{k.name(), parsePriority(k.priority()).value_or(Priority::kStandard), k.limits()};
    if (!k.client_cert_cn().empty()) cert_keys_[k.client_cert_cn()] = key;
    if (!k.sha256().empty()) keys_[k.sha256()] = std::move(key);
  }
  const auto& a = config.admission();
  timeout_ = {std::chrono::milliseconds(a.critical().queue_timeout_ms()),
              std::chrono::milliseconds(a.standard().queue_timeout_ms()),
              std::chrono::milliseconds(a.sheddable().queue_timeout_ms())};
  objective_ = {std::chrono::milliseconds(a.critical().objective_ms()),
                std::chrono::milliseconds(a.standard().objective_ms()),
                std::chrono::milliseconds(a.sheddable().objective_ms())};
}

namespace {

// A header holding whole milliseconds: nullopt when absent, 0 when malformed.
std::optional<uint64_t> headerMs(const pipeline::RequestContext& ctx, std::string_view name) {
  if (!ctx.headers) return std::nullopt;
  const std::string_view t = (*ctx.headers)[name];
  if (t.empty()) return std::nullopt;
  uint64_t ms = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), ms);
  if (ec != std::errc() || p != t.data() + t.size()) return 0;
  return ms;
}

}  // namespace

const AuthenticateStage::Key* AuthenticateStage::find(std::string_view token) const {
  if (keys_.empty() || token.empty()) return nullptr;
  auto it = keys_.find(common::sha256Hex(token));
  return it == keys_.end() ? nullptr : &it->second;
}

const AuthenticateStage::Key* AuthenticateStage::findCertificate(std::string_view common_name) const {
  if (cert_keys_.empty() || common_name.empty()) return nullptr;
  auto it = cert_keys_.find(std::string(common_name));
  return it == cert_keys_.end() ? nullptr : &it->second;
}

pipeline::Verdict AuthenticateStage::process(pipeline::RequestContext& ctx) {
  // A bearer token first; else a verified client certificate (mutual TLS).
  const Key* key = find(ctx.caller.api_key);
  if (!key) key = findCertificate(ctx.caller.client_cert_cn);
  if (key) {
    ctx.caller.key_known = true;
    ctx.caller.tenant = key->tenant;
    ctx.caller.key_limits = &key->limits;
    // The header may lower the key's class, never raise it.
    ctx.caller.priority =
        ctx.caller.priority_from_header ? std::max(ctx.caller.priority, key->priority) : key->priority;
  } else if (required_) {
    const bool missing = ctx.caller.api_key.empty();
    ctx.error = openai::ApiError{
        401,
        missing ? "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                  "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                : "Incorrect API key provided.",
        "invalid_request_error", "", missing ? "" : "invalid_api_key"};
    return pipeline::Verdict::kAnswered;
  }
  // Otherwise the tenant is the client's address, looked up only when
  // something needs it (the queue's fairness, per-address limits).

  // A pool's class (a route rule): its requests get it unless their key's
  // class is lower; the header may only lower it.
  if (const pipeline::PoolRoute* pool = ctx.routes ? ctx.routes->find(ctx.parsed.model) : nullptr;
      pool && pool->priority) {
    ctx.caller.priority = key || ctx.caller.priority_from_header ? std::max(ctx.caller.priority, *pool->priority)
                                                                 : *pool->priority;
  }

  const int cls = static_cast<int>(ctx.caller.priority);
  auto timeout = timeout_[cls];
  auto objective = objective_[cls];
  // The client may shorten its wait and tighten its objective, never relax them.
  struct Bound {
    const char* header;
    std::chrono::milliseconds& value;
  };
  for (auto [name, bound] : {Bound{"x-spillway-timeout-ms", timeout}, Bound{"x-spillway-slo-ttft-ms", objective},
                             Bound{"x-llm-d-slo-ttft-ms", objective}}) {
    const auto ms = headerMs(ctx, name);
    if (!ms) continue;
    if (*ms == 0) {
      ctx.error = openai::ApiError{400, std::string(name) + " must be a whole number of milliseconds above 0.",
                                   "invalid_request_error", name, "invalid_header"};
      return pipeline::Verdict::kAnswered;
    }
    bound = std::min(bound, std::chrono::milliseconds(*ms));
  }
  ctx.objective = objective;
  ctx.deadline = ctx.start + timeout;
  return pipeline::Verdict::kContinue;
}

}  // namespace spillway::admission
