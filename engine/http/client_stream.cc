#include "http/client_stream.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/redirect_error.hpp>

namespace spillway::http {

void ClientStream::useTls(std::shared_ptr<boost::asio::ssl::context> context) {
  context_ = std::move(context);
  tls_.emplace(tcp_, *context_);
}

common::Awaitable<boost::system::error_code> ClientStream::handshake(std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  if (!tls_) co_return ec;
  tcp_.expires_after(timeout);
  co_await tls_->async_handshake(boost::asio::ssl::stream_base::server,
                                 boost::asio::redirect_error(common::kUseAwaitable, ec));
  tcp_.expires_never();
  if (ec) co_return ec;
  SSL* ssl = tls_->native_handle();
  if (SSL_get_verify_result(ssl) != X509_V_OK) co_return ec;  // no certificate: verify mode lets it through
  if (X509* cert = SSL_get1_peer_certificate(ssl)) {
    char cn[256] = {};
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    if (n > 0) client_cert_cn_.assign(cn, static_cast<size_t>(n));
    X509_free(cert);
  }
  co_return ec;
}

}  // namespace spillway::http
