// A minimal OpenAI-compatible backend over TLS, for testing the gateway's
// https upstream client: answers GET /health and any POST with a fixed chat
// completion. Runs its own thread; stops on destruction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace spillway::testing {

class TlsBackend {
 public:
  // `cert_pem` and `key_pem` are file paths. Listens on 127.0.0.1:0.
  TlsBackend(const std::string& cert_pem, const std::string& key_pem);
  ~TlsBackend();
  uint16_t port() const;
  int requestsServed() const;  // POSTs answered
  int probesServed() const;    // GETs (health checks) answered

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::testing
