// Replay: a cached answer in the form the caller asked for, whichever form
// filled the entry. A JSON completion becomes an SSE stream (the whole
// message in one content chunk, then the finish chunk, the usage chunk when
// stream_options.include_usage asks, and [DONE]); a stored stream becomes a
// JSON completion (content and tool-call arguments concatenated per
// choice, the finish reason and usage of the stream). A stream stored with
// its usage chunk serves streams that did not ask for it with that chunk
// left out; one stored without it cannot serve a caller that asks for
// usage (nullopt: treated as a miss).
#pragma once

#include <optional>
#include <string>

#include "cache/entry.h"
#include "openai/openai.h"

namespace spillway::cache {

struct Wanted {
  openai::Endpoint endpoint = openai::Endpoint::kChatCompletions;
  bool stream = false;
  bool include_usage = false;
};

// The body to send and its content type, or nullopt when the entry cannot
// give that form (or is unreadable).
struct Replayed {
  std::string body;
  const char* content_type = "application/json";
};
std::optional<Replayed> replay(const Entry& e, const Wanted& want);

// The form of a stored stream: with or without its usage chunk.
Form streamForm(std::string_view sse);

}  // namespace spillway::cache
