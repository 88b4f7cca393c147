// Switching a pool's balancing policy is a config change: read the running
// config, set pools[model].balancing.policy, apply it based on the version
// read (refused if someone changed the config meanwhile), audited with a
// comment. spillctl and the console's Backends page share this.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "control/engine_client.h"

namespace spillway::control {

// The apply request for the switch (not sent). InvalidArgument for an
// unknown policy name, NotFound when no pool serves `model`; errors from
// reading the config pass through.
absl::StatusOr<v1::ApplyConfigRequest> poolPolicyChange(EngineClient& client, const std::string& model,
                                                        const std::string& policy);

}  // namespace spillway::control
