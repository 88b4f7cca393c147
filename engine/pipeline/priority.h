// Priority classes and why a request was turned away: the words the request
// path speaks in (headers, metrics, config). Admission decides them; every
// module reads them, so they live with the request's contracts.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace spillway::pipeline {

// Highest first: strict priority between classes in the gateway queue.
enum class Priority : uint8_t { kCritical, kStandard, kSheddable };
inline constexpr int kPriorities = 3;
std::string_view priorityName(Priority p);
// "critical", "standard", "sheddable" (any case); nullopt for anything else.
std::optional<Priority> parsePriority(std::string_view s);

// x-spillway-drop-reason values.
enum class DropReason : uint8_t { kNone, kRateLimited, kQueueFull, kDeadline, kDegraded, kNoBackend };
inline constexpr int kDropReasons = 6;
std::string_view dropReasonName(DropReason r);

}  // namespace spillway::pipeline
