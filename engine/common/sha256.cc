#include "common/sha256.h"

#include <openssl/evp.h>

namespace spillway::common {

std::string sha256Hex(std::string_view data) {
  unsigned char h[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), h, &len, EVP_sha256(), nullptr);
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (unsigned char c : h) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}

bool isSha256Hex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace spillway::common
