// The front door's TLS settings (server.tls) as an OpenSSL server context:
// the certificate chain and key from PEM files, TLS 1.2 or newer with
// forward-secret AEAD ciphers only, ALPN http/1.1, client certificates
// checked against the client CA when one is set.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "spillway/v1/config.pb.h"

namespace spillway::http {

struct FrontTlsContext {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::string subject;         // the serving certificate's subject, "CN=api.example.com,O=..."
  int64_t not_after_unix = 0;  // when it expires
  std::string not_after_text;  // the same, "2027-03-01 12:00:00 UTC", for logs
};

// Errors name the field and the file: "server.tls.key_file: ...".
absl::StatusOr<FrontTlsContext> makeFrontTlsContext(const v1::ServerTls& tls);

// The files' modification times and sizes: a different stamp means one of
// them was replaced since it was taken.
std::string tlsFilesStamp(const v1::ServerTls& tls);

}  // namespace spillway::http
