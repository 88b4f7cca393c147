// One problem found in a config, located by field path and, when the config
// came from a file, by file:line:column.
#pragma once

#include <string>
#include <vector>

namespace spillway::config {

struct ConfigError {
  std::string file;     // "" when not from a file
  int line = 0;         // 1-based; 0 when unknown
  int column = 0;       // 1-based; 0 when unknown
  std::string path;     // e.g. "backends[1].url"; "" for the document itself
  std::string message;  // e.g. unsupported scheme "htp"

  // "default.yaml:14:9: backends[1].url: unsupported scheme \"htp\""
  std::string toString() const;
};

// All errors, one per line.
std::string formatErrors(const std::vector<ConfigError>& errors);

}  // namespace spillway::config
