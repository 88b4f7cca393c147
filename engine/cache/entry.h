// One cached answer, as the tiers keep it: the body in the form that filled
// it (a JSON completion or the SSE stream), and where it belongs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cache/cache_key.h"

namespace spillway::cache {

// The form of a stored body. A stream stored with its usage chunk
// (stream_options.include_usage) can serve streams that ask for usage.
enum class Form : uint8_t { kJson = 0, kSse = 1, kSseUsage = 2 };

struct Entry {
  CacheKey key;
  std::string model;   // for purges by model
  std::string tenant;  // "" when shared; for purges by tenant
  Form form = Form::kJson;
  std::string body;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // fresh until then; stale (served only when allowed) up to the grace after

  // What an entry costs the memory tier's byte budget.
  size_t bytes() const { return body.size() + model.size() + tenant.size() + 128; }
};

using EntryPtr = std::shared_ptr<const Entry>;

// A tier's answer to a lookup.
struct Found {
  EntryPtr entry;
  bool stale = false;  // past its TTL, within the grace
  explicit operator bool() const { return entry != nullptr; }
};

}  // namespace spillway::cache
