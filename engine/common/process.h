// Process-level set-up shared by the binaries.
#pragma once

#include <cstdint>

namespace spillway::common {

// Raises the soft limit on open files to the hard limit (a gateway holds two
// sockets per proxied request). Returns the new soft limit.
uint64_t raiseOpenFileLimit();

}  // namespace spillway::common
