#include "control/tls.h"

#include "common/files.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/strings.h"

namespace spillway::control {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

std::string bioString(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::Status writeFile(const std::string& path, const std::string& data, mode_t mode) {
  return common::writePrivateFile(path, data, mode);
}

}  // namespace

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(common::strCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> readTokenFile(const std::string& path) {
  auto text = readFile(path);
  if (!text.ok()) return text.status();
  const size_t begin = text->find_first_not_of(" \n\r\t");
  if (begin == std::string::npos) return absl::InvalidArgumentError(common::strCat(path, " holds no token"));
  return text->substr(begin, text->find_last_not_of(" \n\r\t") + 1 - begin);
}

absl::StatusOr<std::string> certificateFingerprint(const std::string& cert_pem) {
  BioPtr bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert.get(), EVP_sha256(), md, &n);
  std::string out;
  char b[4];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, i ? ":%02X" : "%02X", md[i]);
    out += b;
  }
  return out;
}

absl::StatusOr<TlsMaterial> loadTls(const std::string& cert_file, const std::string& key_file) {
  TlsMaterial m;
  auto cert = readFile(cert_file);
  if (!cert.ok()) return cert.status();
  auto key = readFile(key_file);
  if (!key.ok()) return key.status();
  auto fp = certificateFingerprint(*cert);
  if (!fp.ok()) return absl::InvalidArgumentError(common::strCat(cert_file, ": ", fp.status().message()));
  m.cert_pem = *cert;
  m.key_pem = *key;
  m.fingerprint = *fp;
  return m;
}

absl::StatusOr<TlsMaterial> loadOrCreateSelfSigned(const std::string& dir, const std::string& host) {
  const std::string cert_file = (std::filesystem::path(dir) / "control-cert.pem").string();
  const std::string key_file = (std::filesystem::path(dir) / "control-key.pem").string();
  if (std::filesystem::exists(cert_file) && std::filesystem::exists(key_file)) return loadTls(cert_file, key_file);

  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError("cannot generate an EC key");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_int64(X509_get_serialNumber(cert.get()), static_cast<int64_t>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 825);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("spillway-control"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (!host.empty() && host != "localhost" && host != "127.0.0.1" && host != "::1" && host != "0.0.0.0" &&
      host != "::") {
    bool ip = host.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos;
    san += common::strCat(",", ip ? "IP:" : "DNS:", host);
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())) {
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return absl::InternalError("cannot sign the certificate");

  BioPtr cbio(BIO_new(BIO_s_mem())), kbio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cbio.get(), cert.get());
  PEM_write_bio_PrivateKey(kbio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  TlsMaterial m{bioString(cbio.get()), bioString(kbio.get()), ""};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (auto st = writeFile(key_file, m.key_pem, 0600); !st.ok()) return st;
  if (auto st = writeFile(cert_file, m.cert_pem, 0644); !st.ok()) return st;
  auto fp = certificateFingerprint(m.cert_pem);
  if (!fp.ok()) return fp.status();
  m.fingerprint = *fp;
  return m;
}

}  // namespace spillway::control
