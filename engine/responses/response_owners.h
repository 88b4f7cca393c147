// Which backend stores each Responses API response. A response created with
// `store` (the default) lives on the inference server that produced it:
// requests naming it as previous_response_id, and GET/DELETE
// /v1/responses/{id}, must go back there. The gateway remembers the owner
// of every id it saw created, for api.response_affinity_ttl_seconds, up to
// api.max_remembered_responses ids (the oldest forgotten first).
//
// One per engine, shared by every routing table (ids outlive config
// applies); thread-safe. Replicas each keep their own (see
// docs/operations.md, "Responses API").
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/mutex.h"
#include "metrics/registry.h"

namespace spillway::responses {

class ResponseOwners {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds; injected by tests

  explicit ResponseOwners(metrics::Registry& registry, Clock clock_ms = {});

  void configure(std::chrono::seconds ttl, size_t max_ids);
  void remember(std::string_view id, std::string_view backend);
  // The backend that stores `id`, if remembered and not expired.
  std::optional<std::string> owner(std::string_view id);
  void forget(std::string_view id);
  size_t size() const;

  // How a request that names a stored response was routed (metrics).
  enum class Routed { kPinned, kLost, kUnknown };
  void count(Routed r);

 private:
  int64_t now() const;

  struct Owner {
    std::string backend;
    int64_t expires_ms = 0;
  };
  const Clock clock_;
  mutable common::Mutex mu_;
  std::unordered_map<std::string, Owner> owners_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // ids by first sight, oldest first
  int64_t ttl_ms_ ABSL_GUARDED_BY(mu_) = 86'400'000;
  size_t max_ids_ ABSL_GUARDED_BY(mu_) = 100'000;
  metrics::Family<metrics::Counter>& routed_;
  std::vector<metrics::Registry::Registration> gauges_;
};

}  // namespace spillway::responses
