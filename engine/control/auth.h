// Bearer tokens for the control plane. Only SHA-256 hashes are kept; a
// presented token is hashed and compared with every known hash in constant
// time (no early exit), so timing reveals nothing about which one matched.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spillway/v1/config.pb.h"

namespace spillway::control {

enum class Role { kViewer = 1, kOperator = 2 };

struct Identity {
  std::string name;  // recorded as the actor in the audit log
  Role role = Role::kViewer;
};

class TokenAuthority {
 public:
  explicit TokenAuthority(const google::protobuf::RepeatedPtrField<v1::ControlToken>& tokens);

  // Adds a freshly generated token and returns it in clear (once).
  std::string addGenerated(const std::string& name, Role role);
  size_t size() const { return entries_.size(); }

  // Who holds `token`, if anyone.
  std::optional<Identity> identify(std::string_view token) const;

  static std::string sha256Hex(std::string_view data);
  // 32 random bytes as 64 hex digits (OpenSSL's CSPRNG).
  static std::string randomToken();

 private:
  struct Entry {
    unsigned char hash[32];
    Identity who;
  };
  std::vector<Entry> entries_;
};

}  // namespace spillway::control
