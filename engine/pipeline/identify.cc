#include "pipeline/identify.h"

#include <boost/beast/core/string.hpp>

#include "pipeline/request_context.h"

namespace spillway::pipeline {

namespace bhttp = boost::beast::http;

Verdict IdentifyStage::process(RequestContext& ctx) {
  if (!ctx.headers) return Verdict::kContinue;
  const auto& h = *ctx.headers;
  const std::string_view auth = h[bhttp::field::authorization];
  if (auth.size() > 7 && boost::beast::iequals(auth.substr(0, 7), "Bearer ")) ctx.caller.api_key = std::string(auth.substr(7));
  if (auto s = h["x-session-id"]; !s.empty()) ctx.caller.session_key = std::string(s);
  if (auto p = parsePriority(h["x-spillway-priority"])) {
    ctx.caller.priority = *p;
    ctx.caller.priority_from_header = true;
  }
  return Verdict::kContinue;
}

namespace {

// The client socket's peer address ("" when unknown).
std::string peerAddress(const RequestContext& ctx) {
  if (!ctx.client) return {};
  boost::system::error_code ec;
  const auto ep = ctx.client->remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}

}  // namespace

const std::string& clientAddress(RequestContext& ctx) {
  if (ctx.caller.client_ip.empty()) ctx.caller.client_ip = peerAddress(ctx);
  return ctx.caller.client_ip;
}

std::string clientAddressOf(const RequestContext& ctx) {
  return ctx.caller.client_ip.empty() ? peerAddress(ctx) : ctx.caller.client_ip;
}

std::string tenantOf(const RequestContext& ctx) {
  if (!ctx.caller.tenant.empty()) return ctx.caller.tenant;
  return ctx.caller.client_ip.empty() ? peerAddress(ctx) : ctx.caller.client_ip;
}

}  // namespace spillway::pipeline
