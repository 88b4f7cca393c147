// The gRPC control service: a thin adapter from the Control RPCs to a
// LocalEngineClient, behind bearer-token authentication (roles viewer and
// operator, checked per method, refusals audited) and TLS (always for
// non-loopback addresses; optional mutual TLS).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine.h"
#include "spillway/v1/config.pb.h"

namespace spillway::control {

struct ControlServerOptions {
  v1::Control control;   // listen, TLS files, tokens
  std::string data_dir;  // for a generated certificate and token; "" = none
};

class ControlServer {
 public:
  static absl::StatusOr<std::unique_ptr<ControlServer>> start(Engine& engine, const ControlServerOptions& options);
  ~ControlServer();  // shuts down, cancelling streams

  uint16_t port() const;
  bool tls() const;
  // SHA-256 of the served certificate ("" without TLS).
  std::string fingerprint() const;
  // When no token was configured: the generated operator token, and the
  // file (mode 0600) it was written to: <data_dir>/control.token, or a new
  // private temporary directory without a data dir (removed with the
  // server). Never logged.
  std::string generatedToken() const;
  std::string generatedTokenFile() const;

  struct Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::control
