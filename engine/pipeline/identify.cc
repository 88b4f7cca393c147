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

// The client socket's peer address ("" when unknown), remembered for the
// connection's later requests.
std::string peerAddress(const RequestContext& ctx) {
  if (ctx.client_peer && !ctx.client_peer->empty()) return *ctx.client_peer;
  if (!ctx.client) return {};
  boost::system::error_code ec;
  const auto ep = ctx.client->remote_endpoint(ec);
  if (ec) return {};
  std::string address = ep.address().to_string();
  if (ctx.client_peer) *ctx.client_peer = address;
  return address;
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
