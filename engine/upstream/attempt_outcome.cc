#include "upstream/attempt_outcome.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "common/clock.h"
#include "common/strings.h"

namespace spillway::upstream {

AttemptResult attemptResultFor(int status) {
  if (status == 429 || status == 503) return AttemptResult::kBusy;
  return status >= 500 ? AttemptResult::kFailure : AttemptResult::kSuccess;
}

openai::ApiError reportConnectFailure(Backend& b, const absl::Status& status, OutlierDetector& outliers,
                                      std::span<const BackendPtr> pool) {
  const bool timeout = absl::IsDeadlineExceeded(status);
  const std::string why(status.message());
  if (!timeout && b.config().health_check().path() != "none" && b.healthy()) {
    spdlog::warn("backend {} marked down: {}", b.name(), why);
    b.setHealthy(false);
  }
  outliers.onAttempt(b, AttemptResult::kConnectFailed, pool, common::wallClockMs(), {}, why);
  openai::ApiError e{timeout ? 504 : 502, common::strCat("Upstream ", b.name(), " is unreachable: ", why),
                     "upstream_error", "", timeout ? "upstream_timeout" : "upstream_unreachable"};
  b.noteError(common::wallClockMs(), e.message);
  return e;
}

void reportFailure(Backend& b, const std::string& why, OutlierDetector& outliers, std::span<const BackendPtr> pool) {
  b.noteError(common::wallClockMs(), why);
  outliers.onAttempt(b, AttemptResult::kFailure, pool, common::wallClockMs(), {}, why);
}

uint32_t reportRefusal(Backend& b, int status, std::string_view retry_after, OutlierDetector& outliers,
                       std::span<const BackendPtr> pool) {
  const std::string why = common::strCat("answered HTTP ", status);
  b.noteError(common::wallClockMs(), why);
  outliers.onAttempt(b, attemptResultFor(status), pool, common::wallClockMs(), retry_after, why);
  uint32_t seconds = 0;
  std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
  return seconds;
}

void reportAnswer(Backend& b, int status, bool broken_mid_body, OutlierDetector& outliers,
                  std::span<const BackendPtr> pool) {
  if (broken_mid_body) {
    b.noteError(common::wallClockMs(), "the response broke off mid-body");
  } else if (status >= 500) {
    b.noteError(common::wallClockMs(), common::strCat("answered HTTP ", status));
  }
  outliers.onAttempt(b, broken_mid_body ? AttemptResult::kFailure : attemptResultFor(status), pool,
                     common::wallClockMs(), {}, broken_mid_body ? "broke off mid-body" : "");
}

}  // namespace spillway::upstream
