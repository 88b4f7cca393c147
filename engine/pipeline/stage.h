// A pipeline stage: one policy a request passes through between parsing and
// the upstream pick (identify, route, affinity; the admission, cache and
// degradation issues add theirs). Stages are built from config into the
// routing snapshot, so a config apply swaps them with the routes.
//
// Contract: process() runs on the request's worker thread, for many
// requests at once on different threads: a stage keeps its own state
// thread-safe. It returns kContinue to pass the request on, or kAnswered
// after setting ctx.error (the gateway writes the answer; later stages and
// the upstream are skipped). Stages that must wait (the admission queue)
// will get an awaitable variant with the admission issue.
#pragma once

#include <memory>
#include <string_view>

namespace spillway::pipeline {

struct RequestContext;

enum class Verdict { kContinue, kAnswered };

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  virtual Verdict process(RequestContext& ctx) = 0;
};

using StagePtr = std::unique_ptr<Stage>;

}  // namespace spillway::pipeline
