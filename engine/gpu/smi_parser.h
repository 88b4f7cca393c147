// The text of `nvidia-smi -L`, both forms:
//
//   GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-5fd4...)
//     MIG 3g.40gb     Device  0: (UUID: MIG-c6d4...)            (R470 and later)
//     MIG 1g.10gb Device 1: (UUID: MIG-GPU-5fd4.../7/0)         (before R470)
//
// Standard C++ only.
#pragma once

#include <string>
#include <string_view>

#include "gpu/inventory.h"

namespace spillway::gpu {

struct SmiParse {
  Inventory inventory;
  std::string error;  // "line N: ..." for the first line that is neither form; "" when all parsed
};

// Lines that are neither a GPU nor a MIG line are an error (with their
// number), never a crash; blank lines are skipped. MIG devices of the old
// form carry their GPU and compute instance ids in the UUID.
SmiParse parseNvidiaSmiList(std::string_view text);

}  // namespace spillway::gpu
