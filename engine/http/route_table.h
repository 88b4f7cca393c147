// The routing snapshot the gateway serves from: which backends serve which
// model, and the policy that picks among them. Immutable once built; a new
// config builds a new table and swaps it in whole (in-flight requests keep
// the table they started with).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "balance/balancer.h"
#include "spillway/v1/config.pb.h"
#include "upstream/backend.h"

namespace spillway::http {

struct PoolRoute {
  uint64_t id = 0;  // unique for the engine's lifetime (metric caches key on it)
  std::string model;
  std::vector<upstream::BackendPtr> backends;
  balance::BalancerPtr balancer;
};

struct RouteTable {
  v1::Config config;                        // effective (defaults applied)
  std::vector<upstream::BackendPtr> backends;  // config order
  std::map<std::string, PoolRoute> pools;   // by model id

  const PoolRoute* find(const std::string& model) const {
    auto it = pools.find(model);
    return it == pools.end() ? nullptr : &it->second;
  }
  bool anyAvailable() const {
    for (const auto& b : backends) {
      if (b->available()) return true;
    }
    return false;
  }
};

using RouteTablePtr = std::shared_ptr<const RouteTable>;

}  // namespace spillway::http
