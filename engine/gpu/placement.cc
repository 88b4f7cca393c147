#include "gpu/placement.h"

#include <algorithm>

#include "gpu/selector.h"
#include "pipeline/request_context.h"
#include "pipeline/route_table.h"

namespace spillway::gpu {

namespace {

std::vector<std::string> list(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return {f.begin(), f.end()};
}

Placement::Set matching(const std::vector<std::string>& selectors, const Inventory& inventory,
                        const std::vector<upstream::BackendPtr>& backends) {
  Placement::Set out;
  for (const auto& b : backends) {
    const std::string& bound = b->config().gpu();
    if (selectsAny(selectors, b->name(), bound, resolve(inventory, bound))) out.push_back(b.get());
  }
  return out;
}

}  // namespace

std::shared_ptr<const Placement> Placement::build(const v1::GpuPlacement& cfg, const Inventory& inventory,
                                                  const std::map<std::string, pipeline::PoolRoute>& pools) {
  const std::array<std::vector<std::string>, pipeline::kPriorities> selectors = {
      list(cfg.critical()), list(cfg.standard()), list(cfg.sheddable())};
  const std::vector<std::string> long_selectors = list(cfg.long_());
  const bool long_rule = (cfg.long_max_tokens() > 0 || cfg.long_prompt_tokens() > 0) && !long_selectors.empty();
  bool any = long_rule;
  for (const auto& s : selectors) any = any || !s.empty();
  if (!any) return nullptr;

  auto p = std::make_shared<Placement>();
  if (long_rule) {
    p->long_max_tokens_ = cfg.long_max_tokens();
    p->long_prompt_tokens_ = cfg.long_prompt_tokens();
  }
  for (const auto& [model, route] : pools) {
    Pool pool;
    const Set long_set = long_rule ? matching(long_selectors, inventory, route.backends) : Set{};
    for (int c = 0; c < pipeline::kPriorities; ++c) {
      pool.by_class[c] = matching(selectors[c], inventory, route.backends);
      const std::string name(pipeline::priorityName(static_cast<pipeline::Priority>(c)));
      for (const auto* b : pool.by_class[c]) p->classes_[b].push_back(name);
      if (long_set.empty()) continue;
      Set both;
      for (const auto* b : long_set) {
        if (pool.by_class[c].empty() || std::count(pool.by_class[c].begin(), pool.by_class[c].end(), b)) {
          both.push_back(b);
        }
      }
      pool.long_by_class[c] = both.empty() ? long_set : both;
    }
    for (const auto* b : long_set) p->classes_[b].push_back("long");
    p->pools_.emplace(route.id, std::move(pool));
  }
  for (auto& [b, names] : p->classes_) {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  }
  return p;
}

std::span<const upstream::Backend* const> Placement::allowed(uint64_t pool_id, pipeline::Priority cls,
                                                            bool is_long) const {
  auto it = pools_.find(pool_id);
  if (it == pools_.end()) return {};
  const int c = static_cast<int>(cls);
  if (is_long && !it->second.long_by_class[c].empty()) return it->second.long_by_class[c];
  return it->second.by_class[c];
}

bool Placement::isLong(uint32_t max_tokens, uint32_t prompt_tokens) const {
  return (long_max_tokens_ > 0 && max_tokens >= long_max_tokens_) ||
         (long_prompt_tokens_ > 0 && prompt_tokens >= long_prompt_tokens_);
}

std::vector<std::string> Placement::classesOf(const upstream::Backend& backend) const {
  auto it = classes_.find(&backend);
  return it == classes_.end() ? std::vector<std::string>{} : it->second;
}

pipeline::Verdict PlacementStage::process(pipeline::RequestContext& ctx) {
  if (!ctx.pool || ctx.pin) return pipeline::Verdict::kContinue;  // pinned to the backend that holds its state
  const bool is_long = placement_->isLong(ctx.parsed.max_tokens.value_or(0), ctx.prompt_tokens_estimate);
  ctx.placement = placement_->allowed(ctx.pool->id, ctx.caller.priority, is_long);
  return pipeline::Verdict::kContinue;
}

}  // namespace spillway::gpu
