// A cacheable request's record, set by the cache stage
// (pipeline::RequestContext::cache; null when the request is not cacheable)
// and read by the cache's later stages, its fill sink and degradation.
#pragma once

#include <memory>
#include <string>

#include "cache/cache_key.h"
#include "cache/entry.h"

namespace spillway::cache {

class Flight;
class FlightLease;
struct ItemPlan;

struct CacheState {
  bool active = false;  // cacheable: the later cache stages and the fill run (degradation clears it)
  bool lookup = true;   // may be answered from the cache (not Cache-Control: no-cache)
  bool store = true;    // the answer may be stored (not Cache-Control: no-store)
  // The request's whole answer is an entry (false for embeddings, cached
  // per input in `items`; the key then only names the coalesced flight).
  bool whole = true;
  std::shared_ptr<ItemPlan> items;  // embeddings: the per-input plan (embedding_items.h)
  CacheKey key;
  std::string tenant;     // the entry's scope ("" when shared)
  EntryPtr stale;  // an expired entry within the grace, for degraded answers
  std::shared_ptr<Flight> flight;  // the coalesced flight this request leads
  // Leaves the flight (waking its waiters) when the request ends.
  std::shared_ptr<FlightLease> lease;
};

}  // namespace spillway::cache
