// Identify: who sent the request. The bearer token (API key), the session
// header and the priority class from `x-spillway-priority` (critical,
// standard, sheddable; anything else is standard). The client address is
// read only by stages that need it (clientAddress()).
#pragma once

#include "pipeline/stage.h"

namespace spillway::pipeline {

struct RequestContext;

class IdentifyStage final : public Stage {
 public:
  std::string_view name() const override { return "identify"; }
  Verdict process(RequestContext& ctx) override;
};

// The client's IP address as text, read from the socket once and kept in
// ctx.caller.client_ip; "" when unknown.
const std::string& clientAddress(RequestContext& ctx);
// Who is charged and treated fairly: the caller's tenant, else its address
// (for readers that may not cache it, such as completion observers).
std::string tenantOf(const RequestContext& ctx);

// The client's address, from the caller's record or the socket ("" when
// unknown); for readers of a finished request (the access log).
std::string clientAddressOf(const RequestContext& ctx);

}  // namespace spillway::pipeline
