// TLS material for the control plane: loading PEM files, and generating a
// self-signed certificate (ECDSA P-256, SANs localhost/127.0.0.1/::1 and the
// listen host) on first start.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace spillway::control {

struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  std::string fingerprint;  // SHA-256 of the certificate, "AB:CD:..."
};

absl::StatusOr<TlsMaterial> loadTls(const std::string& cert_file, const std::string& key_file);

// Reuses <dir>/control-cert.pem and control-key.pem when present, else
// creates them (key file mode 0600).
absl::StatusOr<TlsMaterial> loadOrCreateSelfSigned(const std::string& dir, const std::string& host);

absl::StatusOr<std::string> certificateFingerprint(const std::string& cert_pem);

absl::StatusOr<std::string> readFile(const std::string& path);
// A bearer token kept in a file (spillwayd's control.token): its content
// without surrounding whitespace.
absl::StatusOr<std::string> readTokenFile(const std::string& path);

}  // namespace spillway::control
