// A human-readable, field-by-field diff of two configs (or any two messages
// of the same type), for review before an apply and for the version history.
#pragma once

#include <string>
#include <vector>

#include "google/protobuf/message.h"

namespace spillway::config {

// One line per change, e.g.
//   backends[sim-a].weight: 1 -> 3
//   backends[sim-c]: added
//   pools[spillway-large]: removed
//   server.listen: "127.0.0.1:8080" -> "0.0.0.0:8080"
// List elements that have a `name` (or `model`) field are matched by it,
// others by position. Secrets (api_key) show as "(changed)", never values.
std::vector<std::string> diffMessages(const google::protobuf::Message& before,
                                      const google::protobuf::Message& after);

// The lines joined with newlines; "" when equal.
std::string diffText(const google::protobuf::Message& before, const google::protobuf::Message& after);

}  // namespace spillway::config
