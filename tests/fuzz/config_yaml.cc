// The YAML config loader and validator: any text gives a config or errors
// with positions, never a crash; a config that loads takes the defaults,
// validates again, and diffs against the built-in default config.
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config_error.h"
#include "config/config_loader.h"
#include "config/diff.h"
#include "config/validate.h"
#include "fuzz_check.h"

namespace config = spillway::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = config::loadYaml(text, "fuzz.yaml");
  if (!loaded.ok()) {
    (void)config::formatErrors(loaded.errors);
    return 0;
  }
  static const auto defaults = config::loadYaml(config::defaultConfigYaml(), "default.yaml");
  config::applyDefaults(loaded.config);
  // Defaults never make a valid config invalid.
  const auto errors = config::validate(loaded.config);
  FUZZ_CHECK(errors.empty(), "a valid config stays valid with its defaults applied");
  (void)config::diffText(defaults.config, loaded.config);
  return 0;
}
