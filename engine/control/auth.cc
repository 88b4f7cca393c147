#include "control/auth.h"

#include "common/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

namespace spillway::control {
namespace {

void sha256(std::string_view data, unsigned char out[32]) {
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
}

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

bool unhex(const std::string& s, unsigned char out[32]) {
  if (s.size() != 64) return false;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = val(s[2 * i]), lo = val(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

TokenAuthority::TokenAuthority(const google::protobuf::RepeatedPtrField<v1::ControlToken>& tokens) {
  for (const auto& t : tokens) {
    Entry e;
    if (!unhex(t.sha256(), e.hash)) continue;  // validation rejects these earlier
    e.who = {t.name(), t.role() == "operator" ? Role::kOperator : Role::kViewer};
    entries_.push_back(std::move(e));
  }
}

std::string TokenAuthority::addGenerated(const std::string& name, Role role) {
  std::string token = randomToken();
  Entry e;
  sha256(token, e.hash);
  e.who = {name, role};
  entries_.push_back(std::move(e));
  return token;
}

std::optional<Identity> TokenAuthority::identify(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  unsigned char h[32];
  sha256(token, h);
  const Entry* match = nullptr;
  for (const auto& e : entries_) {
    // CRYPTO_memcmp takes the same time whatever the bytes; keep looking
    // after a match so the loop length does not depend on the token either.
    if (CRYPTO_memcmp(h, e.hash, sizeof h) == 0 && !match) match = &e;
  }
  if (!match) return std::nullopt;
  return match->who;
}

std::string TokenAuthority::sha256Hex(std::string_view data) { return common::sha256Hex(data); }

std::string TokenAuthority::randomToken() {
  unsigned char b[32];
  RAND_bytes(b, sizeof b);
  return hex(b, sizeof b);
}

}  // namespace spillway::control
