// SHA-256 as lower-case hex: how control tokens and API keys are kept in the
// config (only their hashes), and the check that a configured hash is one.
#pragma once

#include <string>
#include <string_view>

namespace spillway::common {

std::string sha256Hex(std::string_view data);
// 64 lower-case hex digits.
bool isSha256Hex(std::string_view s);

}  // namespace spillway::common
