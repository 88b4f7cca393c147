// Loading configs: YAML text or files mapped onto the protobuf schema
// (engine/proto/spillway/v1/config.proto) by reflection, so every field the
// schema gains is loadable without new code. Unknown keys are errors with a
// did-you-mean suggestion.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config_error.h"
#include "config/source_map.h"
#include "google/protobuf/message.h"
#include "spillway/v1/config.pb.h"

namespace spillway::config {

struct LoadResult {
  v1::Config config;
  SourceMap sources;
  std::vector<ConfigError> errors;  // parse, mapping and validation errors
  bool ok() const { return errors.empty(); }
};

// Maps YAML onto any protobuf message by reflection (no semantic checks).
// Returns every mapping error; `sources` (optional) records positions.
std::vector<ConfigError> mapYaml(std::string_view yaml_text, const std::string& file,
                                 google::protobuf::Message* message, SourceMap* sources = nullptr);

// Parses and validates. `file` names the source in error messages.
LoadResult loadYaml(std::string_view yaml_text, const std::string& file = "");
// Reads `path` and calls loadYaml; a missing or unreadable file is one error.
LoadResult loadYamlFile(const std::string& path);

// The embedded default config (resources/config/default.yaml).
std::string_view defaultConfigYaml();

// Loads and validates, then fills defaults; all errors joined in the status.
absl::StatusOr<v1::Config> loadEffectiveConfig(std::string_view yaml_text, const std::string& file);

}  // namespace spillway::config
