// Text from the engine side into Qt: std::string, std::string_view and
// absl::string_view (Debian's Abseil has its own type, e.g. Status::message()).
#pragma once

#include <QString>

namespace spillway::ui {

template <typename S>
QString qs(const S& s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

}  // namespace spillway::ui
