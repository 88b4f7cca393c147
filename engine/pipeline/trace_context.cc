#include "pipeline/trace_context.h"

#include <random>

#include "common/strings.h"

namespace spillway::pipeline {

namespace {

bool lowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool allZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

// `n` random hex digits, never all zero (a fast per-thread generator: ids
// need to be unique, not secret).
std::string randomHex(size_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n, '0');
  do {
    for (size_t i = 0; i < n; i += 16) {
      uint64_t v = rng();
      for (size_t j = i; j < std::min(n, i + 16); ++j, v >>= 4) out[j] = kDigits[v & 15];
    }
  } while (allZero(out));
  return out;
}

}  // namespace

std::string TraceContext::upstreamHeaders() const {
  std::string out = common::strCat("traceparent: 00-", trace_id, "-", span_id, "-", flags, "\r\n");
  if (!tracestate.empty()) common::strAppend(&out, "tracestate: ", tracestate, "\r\n");
  return out;
}

std::optional<TraceContext> parseTraceparent(std::string_view tp) {
  // version "-" trace-id "-" parent-id "-" trace-flags, 55 characters for
  // version 00; later versions may append fields after another "-".
  while (!tp.empty() && (tp.front() == ' ' || tp.front() == '\t')) tp.remove_prefix(1);
  while (!tp.empty() && (tp.back() == ' ' || tp.back() == '\t')) tp.remove_suffix(1);
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return std::nullopt;
  const std::string_view version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
                         flags = tp.substr(53, 2);
  if (!lowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" && tp.size() != 55) return std::nullopt;
  if (tp.size() > 55 && tp[55] != '-') return std::nullopt;
  if (!lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags) || allZero(trace) || allZero(parent)) {
    return std::nullopt;
  }
  TraceContext t;
  t.trace_id = std::string(trace);
  t.parent_id = std::string(parent);
  t.flags = std::string(flags);
  return t;
}

TraceContext traceFor(std::string_view traceparent, std::string_view tracestate) {
  std::optional<TraceContext> t = parseTraceparent(traceparent);
  if (t) {
    t->tracestate = std::string(tracestate.substr(0, 512));  // the spec's limit
  } else {
    t.emplace();
    t->trace_id = randomHex(32);
  }
  t->span_id = randomHex(16);
  return *t;
}

}  // namespace spillway::pipeline
