#include "support/test_config.h"

#include <cstdio>
#include <cstdlib>

#include "config/config_loader.h"

namespace spillway::testing {

v1::Config configFromYaml(const std::string& yaml) {
  auto r = config::loadYaml(yaml, "test.yaml");
  if (!r.ok()) {
    std::fprintf(stderr, "invalid test config:\n%s\n%s", yaml.c_str(), config::formatErrors(r.errors).c_str());
    std::abort();
  }
  return r.config;
}

std::unique_ptr<Engine> startFromYaml(const std::string& yaml) {
  auto e = Engine::start(configFromYaml(yaml), EngineOptions{"", "test", false});
  if (!e.ok()) {
    std::fprintf(stderr, "engine start failed: %s\n", std::string(e.status().message()).c_str());
    std::abort();
  }
  return std::move(*e);
}

std::string engineYaml(const std::string& backends_block, const std::string& extra) {
  return "server:\n  listen: 127.0.0.1:0\n  threads: 2\n" + extra + "backends:\n" + backends_block;
}

}  // namespace spillway::testing
