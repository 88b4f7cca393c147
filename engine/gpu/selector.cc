#include "gpu/selector.h"

namespace spillway::gpu {

Binding resolve(const Inventory& inventory, std::string_view bound) {
  Binding b;
  if (bound.empty()) return b;
  for (const auto& g : inventory.gpus) {
    if (g.uuid == bound || std::to_string(g.index) == bound) {
      b.gpu = &g;
      return b;
    }
    for (const auto& m : g.mig) {
      if (m.uuid == bound) {
        b.gpu = &g;
        b.mig = &m;
        return b;
      }
    }
  }
  return b;
}

bool selects(std::string_view selector, std::string_view backend_name, std::string_view bound, const Binding& at) {
  if (selector.empty()) return false;
  if (selector == backend_name) return true;
  if (bound.empty()) return false;
  if (selector == bound) return true;
  if (!at.gpu) return false;
  const std::string index = std::to_string(at.gpu->index);
  if (selector == at.gpu->uuid || selector == index) return true;
  if (!at.mig) return false;
  if (selector == at.mig->uuid || selector == at.mig->profile) return true;
  return selector == index + ":" + at.mig->profile;
}

bool selectsAny(const std::vector<std::string>& selectors, std::string_view backend_name, std::string_view bound,
                const Binding& at) {
  for (const auto& s : selectors) {
    if (selects(s, backend_name, bound, at)) return true;
  }
  return false;
}

}  // namespace spillway::gpu
