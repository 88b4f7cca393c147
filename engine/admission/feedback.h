// What admission learns when a request ends (a completion observer):
//   - the backend's learned concurrency limit gets the request's waiting
//     time (upstream/adaptive_limit.h);
//   - the tenant's Virtual Token Counter is charged its generated tokens;
//   - a request the limits or degradation turned away is counted in the
//     queue's per-tenant drops;
//   - the pool's recent service time (slot to first token, or to the whole
//     answer) and whether the request was answered in full inside its
//     latency objective (the class's attainment);
//   - rate-limit token buckets are corrected from the estimate charged at
//     admission to the tokens really used (prompt estimate + output).
#pragma once

#include "pipeline/completion.h"

namespace spillway::admission {

class AdmissionFeedback final : public pipeline::CompletionObserver {
 public:
  void onComplete(const pipeline::RequestContext& ctx) override;
};

}  // namespace spillway::admission
