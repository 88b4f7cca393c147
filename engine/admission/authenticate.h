// Authenticate: who the caller is for admission. The bearer token is hashed
// (SHA-256) and looked up among limits.keys, else a verified client
// certificate's common name (mutual TLS) among the keys' client_cert_cn; a
// known key gives the tenant name and the priority class
// (x-spillway-priority may only lower it). With
// limits.require_key, a missing or unknown key is answered 401 in OpenAI's
// shape; otherwise (open access, the default) such a caller's tenant is its
// client address. Also sets the request's latency objective — its class's
// objective_ms, tightened (never relaxed) by x-spillway-slo-ttft-ms or
// llm-d's x-llm-d-slo-ttft-ms — and its queue deadline: its class's
// queue_timeout_ms, shortened by x-spillway-timeout-ms, and never past the
// objective.
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <unordered_map>

#include "admission/priority.h"
#include "pipeline/stage.h"
#include "spillway/v1/config.pb.h"

namespace spillway::admission {

class AuthenticateStage final : public pipeline::Stage {
 public:
  explicit AuthenticateStage(const v1::Config& config);
  std::string_view name() const override { return "authenticate"; }
  pipeline::Verdict process(pipeline::RequestContext& ctx) override;

  struct Key {
    std::string tenant;
    Priority priority = Priority::kStandard;
    v1::RateLimit limits;
  };
  // The key a token belongs to, or null.
  const Key* find(std::string_view token) const;
  // The key a verified client certificate's common name stands for, or null.
  const Key* findCertificate(std::string_view common_name) const;

 private:
  bool required_ = false;
  std::unordered_map<std::string, Key> keys_;  // by hex SHA-256
  std::unordered_map<std::string, Key> cert_keys_;  // by client certificate common name
  std::array<std::chrono::milliseconds, kPriorities> timeout_{};
  std::array<std::chrono::milliseconds, kPriorities> objective_{};
};

}  // namespace spillway::admission
