// Route: the pool that serves the request's model, from the routing
// snapshot. An unknown model is answered 404 model_not_found here, a model
// whose pool does not serve the endpoint 404 unsupported_endpoint (an
// embedding model asked to chat). A passthrough request that names no model
// goes to the only pool when there is one, else 400 asks for a model.
#pragma once

#include "pipeline/stage.h"

namespace spillway::pipeline {

class RouteStage final : public Stage {
 public:
  std::string_view name() const override { return "route"; }
  Verdict process(RequestContext& ctx) override;
};

}  // namespace spillway::pipeline
