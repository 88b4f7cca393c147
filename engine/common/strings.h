// String helpers over std::string_view. Debian's abseil is built with its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so absl::StrCat does
// not take std::string_view; these small helpers do.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace spillway::common {

namespace detail {
template <typename T>
void appendOne(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    out += v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, char>) {
    out.push_back(v);
  } else if constexpr (std::is_arithmetic_v<T>) {
    out += std::to_string(v);
  } else if constexpr (requires { v.data(); v.size(); }) {
    out.append(v.data(), v.size());  // std::string(_view), absl::string_view
  } else {
    out += std::string_view(v);
  }
}
}  // namespace detail

template <typename... Args>
void strAppend(std::string* out, const Args&... args) {
  (detail::appendOne(*out, args), ...);
}

template <typename... Args>
std::string strCat(const Args&... args) {
  std::string out;
  strAppend(&out, args...);
  return out;
}

std::string toLower(std::string_view s);
std::string toUpper(std::string_view s);
std::string join(const std::vector<std::string>& parts, std::string_view sep);

}  // namespace spillway::common
