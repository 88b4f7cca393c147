#include "http/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <ctime>

#include "common/strings.h"

namespace spillway::http {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2's suites: ECDHE key exchange (forward secrecy) with AEAD ciphers
// only. TLS 1.3's are OpenSSL's defaults, all of them strong.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// ALPN: http/1.1 when the client offers it. A client offering only other
// protocols (h2) gets no ALPN answer and may go on with HTTP/1.1 or leave.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
               void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string openSslError(const boost::system::error_code& ec) {
  std::string what = ec.message();
  if (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    what = buf;
  }
  ERR_clear_error();
  return what;
}

std::string subjectOf(X509* cert) {
  std::string out;
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return out;
  if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return out;
}

}  // namespace

absl::StatusOr<FrontTlsContext> makeFrontTlsContext(const v1::ServerTls& tls) {
  if (tls.cert_file().empty() || tls.key_file().empty()) {
    return absl::InvalidArgumentError("server.tls: cert_file and key_file are both required");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                       ssl::context::single_dh_use,
                   ec);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_min_proto_version(native, tls.min_version() == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return absl::InternalError("server.tls: OpenSSL refused the cipher list");
  }
  SSL_CTX_set_alpn_select_cb(native, selectAlpn, nullptr);

  ctx->use_certificate_chain_file(tls.cert_file(), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        common::strCat("server.tls.cert_file: cannot use \"", tls.cert_file(), "\": ", openSslError(ec)));
  }
  ctx->use_private_key_file(tls.key_file(), ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        common::strCat("server.tls.key_file: cannot use \"", tls.key_file(), "\": ", openSslError(ec)));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(common::strCat("server.tls.key_file: \"", tls.key_file(),
                                                     "\" is not the key of the certificate in \"", tls.cert_file(), "\""));
  }
  if (!tls.client_ca_file().empty()) {
    ctx->load_verify_file(tls.client_ca_file(), ec);
    STACK_OF(X509_NAME)* names = ec ? nullptr : SSL_load_client_CA_file(tls.client_ca_file().c_str());
    if (ec || !names) {
      return absl::InvalidArgumentError(common::strCat("server.tls.client_ca_file: cannot use \"", tls.client_ca_file(),
                                                       "\": ", openSslError(ec)));
    }
    SSL_CTX_set_client_CA_list(native, names);
    ctx->set_verify_mode(ssl::verify_peer | (tls.require_client_cert() ? ssl::verify_fail_if_no_peer_cert : 0), ec);
    // Session resumption with client certificates needs a context id.
    static const unsigned char kSessionContext[] = "spillway-front";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  }

  FrontTlsContext out;
  out.context = std::move(ctx);
  if (X509* cert = SSL_CTX_get0_certificate(native)) {
    out.subject = subjectOf(cert);
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
      out.not_after_unix = timegm(&tm);
      char text[32];
      if (std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm) > 0) out.not_after_text = text;
    }
  }
  return out;
}

std::string tlsFilesStamp(const v1::ServerTls& tls) {
  std::string stamp;
  for (const std::string* path : {&tls.cert_file(), &tls.key_file(), &tls.client_ca_file()}) {
    struct stat st {};
    if (path->empty() || ::stat(path->c_str(), &st) != 0) {
      stamp += "-;";
      continue;
    }
    stamp += common::strCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ":", st.st_ino, ";");
  }
  return stamp;
}

}  // namespace spillway::http
