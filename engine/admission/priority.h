// Admission speaks the request path's words for classes and drop reasons
// (pipeline/priority.h); this header names them in admission's namespace.
#pragma once

#include "pipeline/priority.h"

namespace spillway::admission {

using pipeline::DropReason;
using pipeline::dropReasonName;
using pipeline::kDropReasons;
using pipeline::kPriorities;
using pipeline::parsePriority;
using pipeline::Priority;
using pipeline::priorityName;

}  // namespace spillway::admission
