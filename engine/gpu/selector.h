// Instance selectors, as placement rules and worker groups name GPU
// instances: a MIG or GPU UUID, a GPU index ("0"), a profile ("1g.10gb"),
// a GPU and profile ("0:3g.40gb"), or a backend name. Standard C++ only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gpu/inventory.h"

namespace spillway::gpu {

// What a backend's `gpu` field (a MIG UUID, GPU UUID or GPU index) points
// at in an inventory; both null when nothing matches.
struct Binding {
  const GpuDevice* gpu = nullptr;
  const MigDevice* mig = nullptr;  // null: the whole GPU
};
Binding resolve(const Inventory& inventory, std::string_view bound);

// Whether `selector` picks the backend `backend_name` bound to `bound`
// (resolved to `at`).
bool selects(std::string_view selector, std::string_view backend_name, std::string_view bound, const Binding& at);
bool selectsAny(const std::vector<std::string>& selectors, std::string_view backend_name, std::string_view bound,
                const Binding& at);

}  // namespace spillway::gpu
