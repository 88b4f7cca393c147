// Writing files that hold secrets (tokens, private keys).
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

#include "absl/status/status.h"

namespace spillway::common {

// Writes `data` to `path` (replacing it), with permissions `mode` from the
// moment the file exists: created with open(O_CREAT, mode) and fchmod'ed
// before the first byte, so no other user can open it in between (a file
// written first and chmod'ed after can be read in that window, and keeps its
// old mode if it already existed).
absl::Status writePrivateFile(const std::string& path, std::string_view data, mode_t mode = 0600);

}  // namespace spillway::common
