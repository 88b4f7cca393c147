// Semantic validation and defaults for a config already mapped onto the schema.
#pragma once

#include <vector>

#include "absl/status/status.h"

#include "config/config_error.h"
#include "config/source_map.h"
#include "spillway/v1/config.pb.h"

namespace spillway::config {

// Every problem at once, located through `sources` when given.
std::vector<ConfigError> validate(const v1::Config& config, const SourceMap* sources = nullptr,
                                  const std::string& file = "");

// Fills every zero/empty field with its documented default, resolves
// per-backend overrides from `upstream`, and derives pools from the
// backends' model lists when none are given. Call on a valid config.
void applyDefaults(v1::Config& config);

// Fills the zero fields of a simulator profile from its named built-in
// profile ("default" when unnamed). Unknown names are an error.
absl::Status fillSimDefaults(v1::SimProfile& sim);

// The API key to send to a backend (api_key_env wins when its variable is set).
std::string resolveApiKey(const v1::Backend& backend);

}  // namespace spillway::config
