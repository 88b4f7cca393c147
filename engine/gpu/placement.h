// GPU placement (gpu.placement): which backends — bound to GPU instances —
// a request may be placed on, by its priority class and by whether it is
// long. Built per routing table from the config, the inventory and the
// pools; the stage writes the request's set into the pick, so the
// admission queue and the balancer only ever place it there.
//
//   class set   the pool's backends the class's selectors match; every
//               backend of the pool when the class has no selectors, or
//               when they match none of this pool's backends
//   long        (max_tokens >= long_max_tokens or prompt estimate >=
//               long_prompt_tokens) confined to the `long` instances: those
//               in its class set, or all of them when none is
#pragma once

#include <array>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gpu/inventory.h"
#include "pipeline/priority.h"
#include "pipeline/stage.h"
#include "spillway/v1/config.pb.h"
#include "upstream/backend.h"

namespace spillway::pipeline {
struct PoolRoute;
}

namespace spillway::gpu {

class Placement {
 public:
  using Set = std::vector<const upstream::Backend*>;
  // Null when nothing is placed (no selectors and no long rule).
  static std::shared_ptr<const Placement> build(const v1::GpuPlacement& cfg, const Inventory& inventory,
                                                const std::map<std::string, pipeline::PoolRoute>& pools);

  // The backends a request may use; empty: any of the pool's.
  std::span<const upstream::Backend* const> allowed(uint64_t pool_id, pipeline::Priority cls, bool is_long) const;
  bool isLong(uint32_t max_tokens, uint32_t prompt_tokens) const;
  // The classes placed on `backend` ("critical", ..., "long"), for views.
  std::vector<std::string> classesOf(const upstream::Backend& backend) const;

 private:
  struct Pool {
    std::array<Set, pipeline::kPriorities> by_class;       // empty: unrestricted
    std::array<Set, pipeline::kPriorities> long_by_class;  // empty: as by_class
  };
  uint32_t long_max_tokens_ = 0;
  uint32_t long_prompt_tokens_ = 0;
  std::map<uint64_t, Pool> pools_;  // by pool id
  std::map<const upstream::Backend*, std::vector<std::string>> classes_;
};

// The stage: after degradation (which may cap max_tokens), before affinity.
class PlacementStage : public pipeline::Stage {
 public:
  explicit PlacementStage(std::shared_ptr<const Placement> placement) : placement_(std::move(placement)) {}
  std::string_view name() const override { return "placement"; }
  pipeline::Verdict process(pipeline::RequestContext& ctx) override;

 private:
  std::shared_ptr<const Placement> placement_;
};

}  // namespace spillway::gpu
