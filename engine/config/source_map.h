// Where each field of a config came from in its YAML file.
#pragma once

#include <map>
#include <string>

namespace spillway::config {

struct SourcePosition {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

class SourceMap {
 public:
  void record(const std::string& path, SourcePosition pos) { positions_[path] = pos; }
  // Position of `path`, or of its nearest recorded parent ("backends[1].url"
  // falls back to "backends[1]", then "backends"); {0,0} when none.
  SourcePosition find(std::string path) const;

 private:
  std::map<std::string, SourcePosition> positions_;
};

}  // namespace spillway::config
