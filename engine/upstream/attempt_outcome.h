// How one upstream attempt's outcome reaches the backend's passive state
// (its last error, health) and the pool's outlier detector — the reporting
// half of the attempt loop, in one place for every kind of outcome.
// Called on the request's worker thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "openai/openai.h"
#include "upstream/backend.h"
#include "upstream/outlier_detector.h"

namespace spillway::upstream {

// An answer's status as the detector counts it: 429/503 busy, other 5xx a
// failure, the rest success.
AttemptResult attemptResultFor(int status);

// Connecting failed. A refused or unreachable backend that is health
// checked goes out of rotation until the checker sees it answer again
// (without health checks the detector ejects it for a while instead).
// Returns the client's error: 504 upstream_timeout or 502
// upstream_unreachable.
openai::ApiError reportConnectFailure(Backend& b, const absl::Status& status, OutlierDetector& outliers,
                                      std::span<const BackendPtr> pool);
// The attempt failed before any response (`why`).
void reportFailure(Backend& b, const std::string& why, OutlierDetector& outliers, std::span<const BackendPtr> pool);
// The backend refused (a 429 or 5xx held back); returns its Retry-After in
// seconds (0: none or unreadable).
uint32_t reportRefusal(Backend& b, int status, std::string_view retry_after, OutlierDetector& outliers,
                       std::span<const BackendPtr> pool);
// The backend answered (relayed to the client), or its answer broke off
// mid-body.
void reportAnswer(Backend& b, int status, bool broken_mid_body, OutlierDetector& outliers,
                  std::span<const BackendPtr> pool);

}  // namespace spillway::upstream
