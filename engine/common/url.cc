#include "common/url.h"

#include <charconv>

#include "common/strings.h"

namespace spillway::common {
namespace {

absl::StatusOr<uint16_t> parsePort(std::string_view s) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v > 65535) {
    return absl::InvalidArgumentError(common::strCat("invalid port \"", s, "\""));
  }
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string Url::hostHeader() const {
  std::string h = host.find(':') != std::string::npos ? common::strCat("[", host, "]") : host;
  bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  if (!default_port) common::strAppend(&h, ":", port);
  return h;
}

absl::StatusOr<HostPort> parseHostPort(std::string_view s) {
  HostPort hp;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return absl::InvalidArgumentError(common::strCat("expected \"[V6]:PORT\", got \"", s, "\""));
    }
    hp.host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(common::strCat("expected \"HOST:PORT\", got \"", s, "\""));
    }
    hp.host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
  }
  if (hp.host.empty()) {
    return absl::InvalidArgumentError(common::strCat("missing host in \"", s, "\""));
  }
  auto p = parsePort(port);
  if (!p.ok()) return p.status();
  hp.port = *p;
  return hp;
}

absl::StatusOr<Url> parseUrl(std::string_view url) {
  Url u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return absl::InvalidArgumentError(
        common::strCat("\"", url, "\" is not a URL (expected http://, https:// or sim://)"));
  }
  u.scheme = std::string(url.substr(0, sep));
  for (auto& c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.scheme != "http" && u.scheme != "https" && u.scheme != "sim") {
    return absl::InvalidArgumentError(common::strCat("unsupported scheme \"", u.scheme,
                                                   "\" (expected http, https or sim)"));
  }
  std::string_view rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    u.path_prefix = std::string(path);
  }
  if (authority.empty()) {
    return absl::InvalidArgumentError(common::strCat("missing host in \"", url, "\""));
  }
  if (u.scheme == "sim") {
    u.host = std::string(authority);
    return u;
  }
  bool bracketed = authority.front() == '[';
  auto colon = authority.rfind(':');
  bool has_port = colon != std::string_view::npos &&
                  (!bracketed || colon > authority.find(']'));
  if (has_port) {
    auto hp = parseHostPort(authority);
    if (!hp.ok()) return hp.status();
    u.host = hp->host;
    u.port = hp->port;
    if (u.port == 0) return absl::InvalidArgumentError("port 0 is not valid in a backend URL");
  } else {
    u.host = std::string(bracketed ? authority.substr(1, authority.size() - 2) : authority);
    u.port = u.scheme == "https" ? 443 : 80;
  }
  if (u.host.empty()) {
    return absl::InvalidArgumentError(common::strCat("missing host in \"", url, "\""));
  }
  return u;
}

bool isLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  return host.starts_with("127.") && host.find_first_not_of("0123456789.") == std::string_view::npos;
}

}  // namespace spillway::common
