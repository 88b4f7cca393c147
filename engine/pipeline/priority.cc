#include "pipeline/priority.h"

#include <boost/beast/core/string.hpp>

namespace spillway::pipeline {

std::string_view priorityName(Priority p) {
  switch (p) {
    case Priority::kCritical: return "critical";
    case Priority::kSheddable: return "sheddable";
    case Priority::kStandard: break;
  }
  return "standard";
}

std::optional<Priority> parsePriority(std::string_view s) {
  for (Priority p : {Priority::kCritical, Priority::kStandard, Priority::kSheddable}) {
    if (boost::beast::iequals(s, priorityName(p))) return p;
  }
  return std::nullopt;
}

std::string_view dropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kRateLimited: return "rate_limited";
    case DropReason::kQueueFull: return "queue_full";
    case DropReason::kDeadline: return "deadline";
    case DropReason::kDegraded: return "degraded";
    case DropReason::kNoBackend: return "no_backend";
    case DropReason::kNone: break;
  }
  return "none";
}

}  // namespace spillway::pipeline
