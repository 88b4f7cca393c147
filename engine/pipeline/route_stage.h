// Route: the pool that serves the request's model, from the routing
// snapshot. An unknown model is answered 404 model_not_found here.
#pragma once

#include "pipeline/stage.h"

namespace spillway::pipeline {

class RouteStage final : public Stage {
 public:
  std::string_view name() const override { return "route"; }
  Verdict process(RequestContext& ctx) override;
};

}  // namespace spillway::pipeline
