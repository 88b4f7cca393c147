#include "pipeline/affinity.h"

#include <boost/beast/http/field.hpp>
#include <random>

#include "balance/consistent_hash.h"
#include "balance/random.h"
#include "common/strings.h"
#include "pipeline/identify.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::pipeline {

namespace bhttp = boost::beast::http;

std::string_view cookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return {};
}

std::vector<uint64_t> prefixBlocks(std::string_view body, uint32_t block_bytes, size_t max_blocks) {
  std::vector<uint64_t> out;
  if (block_bytes == 0) return out;
  size_t from = body.find("\"messages\"");
  if (from == std::string_view::npos) from = body.find("\"prompt\"");
  if (from == std::string_view::npos) return out;
  std::string_view rest = body.substr(from);
  uint64_t chain = 0;
  // Whole blocks only: a partial last block would differ between requests
  // that share the prefix but not the tail.
  while (rest.size() >= block_bytes && out.size() < max_blocks) {
    chain = balance::hashBytes(rest.substr(0, block_bytes), chain);
    out.push_back(chain);
    rest.remove_prefix(block_bytes);
  }
  return out;
}

namespace {

std::string hex16(uint64_t v) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(v));
  return out;
}

std::string newCookieValue() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return hex16(rng());
}

// Gives the client a cookie to come back with.
void setAffinityCookie(RequestContext& ctx, std::string_view name, std::string_view value) {
  common::strAppend(&ctx.response_headers, "Set-Cookie: ", name, "=", value, "; Path=/; HttpOnly; SameSite=Lax\r\n");
}

}  // namespace

Verdict AffinityStage::process(RequestContext& ctx) {
  const balance::Needs& needs = ctx.pool->needs;
  if (needs.prefix_blocks) ctx.prefix_blocks = prefixBlocks(ctx.body, needs.prefix_block_bytes);
  if (!needs.hash_key) return Verdict::kContinue;
  std::string_view key;
  std::string set_cookie_value;
  auto cookie = [&](std::string_view name) {
    return ctx.headers ? cookieValue((*ctx.headers)[bhttp::field::cookie], name) : std::string_view();
  };
  switch (needs.key) {
    case v1::CHAIN:
      // What API clients send (a session header, the "user" field), then
      // what a browser keeps (the cookie), then the address — given to the
      // client as its cookie, so the next request keys the same.
      if (ctx.headers) key = (*ctx.headers)[needs.header_name];
      if (key.empty()) key = ctx.parsed.user;
      if (key.empty()) key = cookie(needs.cookie_name);
      if (key.empty()) {
        set_cookie_value = hex16(balance::hashBytes(clientAddress(ctx)));
        key = set_cookie_value;
        setAffinityCookie(ctx, needs.cookie_name, set_cookie_value);
      }
      break;
    case v1::HEADER:
      if (ctx.headers) key = (*ctx.headers)[needs.header_name];
      break;
    case v1::USER:
      key = ctx.parsed.user;
      break;
    case v1::CLIENT_IP:
      key = clientAddress(ctx);
      break;
    case v1::COOKIE:
    default:
      key = cookie(needs.cookie_name);
      if (key.empty()) {
        // First visit: give the client a key of its own to come back with.
        set_cookie_value = newCookieValue();
        key = set_cookie_value;
        setAffinityCookie(ctx, needs.cookie_name, set_cookie_value);
      }
      break;
  }
  if (!key.empty()) {
    ctx.hash_key = balance::hashBytes(key);
    ctx.has_hash_key = true;
  }
  return Verdict::kContinue;
}

}  // namespace spillway::pipeline
