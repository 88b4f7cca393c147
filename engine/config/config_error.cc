#include "config/config_error.h"

#include "common/strings.h"
#include "config/source_map.h"

namespace spillway::config {

std::string ConfigError::toString() const {
  std::string out;
  if (!file.empty()) common::strAppend(&out, file, ":");
  if (line > 0) common::strAppend(&out, line, ":", column, ":");
  if (!out.empty()) out += " ";
  if (!path.empty()) common::strAppend(&out, path, ": ");
  out += message;
  return out;
}

std::string formatErrors(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) common::strAppend(&out, e.toString(), "\n");
  return out;
}

SourcePosition SourceMap::find(std::string path) const {
  for (;;) {
    auto it = positions_.find(path);
    if (it != positions_.end()) return it->second;
    if (path.empty()) return {};
    auto cut = path.find_last_of(".[");
    path = cut == std::string::npos ? std::string() : path.substr(0, cut);
  }
}

}  // namespace spillway::config
