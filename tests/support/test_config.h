// Config builders for tests: YAML in, a validated v1::Config out.
#pragma once

#include <memory>
#include <string>

#include "engine.h"
#include "spillway/v1/config.pb.h"

namespace spillway::testing {

// Parses and validates `yaml`; aborts the test binary with every error
// printed when it is invalid (a broken fixture is a bug in the test).
v1::Config configFromYaml(const std::string& yaml);

// An engine on `yaml` (no data directory, no sampler history); aborts the
// test binary when it does not start.
std::unique_ptr<Engine> startFromYaml(const std::string& yaml);

// Two instant simulators, "a" and "b", both serving model "m" (a backends
// block for engineYaml).
inline constexpr const char* kTwoInstantSims = R"(  - name: a
    url: sim://a
    models: [m]
    sim: {profile: instant}
  - name: b
    url: sim://b
    models: [m]
    sim: {profile: instant}
)";

// A config listening on 127.0.0.1:0 with the given backends block (YAML,
// already indented as a list under "backends:"), one worker thread.
std::string engineYaml(const std::string& backends_block, const std::string& extra = "");

}  // namespace spillway::testing
