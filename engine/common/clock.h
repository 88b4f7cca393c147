// Wall-clock time as Unix milliseconds: what the store, the audit log and
// the backends' "last error" / "ejected until" times are written in.
#pragma once

#include <chrono>
#include <cstdint>

namespace spillway::common {

inline int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace spillway::common
