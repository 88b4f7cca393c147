// Parsing of the addresses that appear in config: backend URLs and
// "HOST:PORT" listen addresses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace spillway::common {

struct Url {
  std::string scheme;       // "http", "https" or "sim"
  std::string host;         // without brackets for IPv6; the sim name for sim://
  uint16_t port = 0;        // defaulted from the scheme when absent
  std::string path_prefix;  // "" or "/prefix" without a trailing slash

  // "host:port" as sent in the Host header (IPv6 bracketed).
  std::string hostHeader() const;
};

// Accepts http://, https:// and sim:// URLs. Errors name what is wrong, e.g.
// `unsupported scheme "htp"`.
absl::StatusOr<Url> parseUrl(std::string_view url);

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Parses "HOST:PORT" or "[V6]:PORT". Port 0 is allowed (pick a free port).
absl::StatusOr<HostPort> parseHostPort(std::string_view s);

// Only this machine can reach it: "localhost", 127.0.0.0/8 or ::1.
bool isLoopbackHost(std::string_view host);

}  // namespace spillway::common
