// Replay as a round trip: a JSON completion turned into an SSE stream and
// back gives the same content, finish reason and usage; an SSE stream cut
// into chunks anywhere (at character boundaries) and turned into JSON gives
// the content joined. The input is the content (valid UTF-8 only; the
// first byte picks the finish reason and the chunk size).
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "cache/replay.h"
#include "common/json_writer.h"
#include "fuzz_check.h"

namespace cache = spillway::cache;
namespace oa = spillway::openai;
using spillway::common::JsonWriter;

namespace {

struct Answer {
  std::string content, finish_reason;
  int64_t total_tokens = -1;
};

Answer readJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  Answer a;
  FUZZ_CHECK(!parser.parse(json.data(), json.size(), true).get(root), "replay writes valid JSON");
  std::string_view s;
  simdjson::dom::element choice;
  FUZZ_CHECK(!root["choices"].at(0).get(choice), "replay keeps the choice");
  if (!choice["message"]["content"].get_string().get(s)) a.content = s;
  if (!choice["finish_reason"].get_string().get(s)) a.finish_reason = s;
  int64_t total = -1;
  if (!root["usage"]["total_tokens"].get_int64().get(total)) a.total_tokens = total;
  return a;
}

std::string completion(std::string_view content, std::string_view finish) {
  JsonWriter j;
  j.beginObject().key("id").value("chatcmpl-fuzz").key("object").value("chat.completion").key("created").value(1);
  j.key("model").value("m").key("choices").beginArray().beginObject().key("index").value(0);
  j.key("message").beginObject().key("role").value("assistant").key("content").value(content).endObject();
  j.key("finish_reason").value(finish).endObject().endArray();
  j.key("usage").beginObject().key("prompt_tokens").value(1).key("completion_tokens").value(2);
  j.key("total_tokens").value(3).endObject().endObject();
  return j.take();
}

std::string chunkEvent(std::string_view content, std::string_view finish, bool first) {
  JsonWriter j;
  j.beginObject().key("id").value("chatcmpl-fuzz").key("object").value("chat.completion.chunk").key("created").value(1);
  j.key("model").value("m").key("choices").beginArray().beginObject().key("index").value(0);
  j.key("delta").beginObject();
  if (first) j.key("role").value("assistant");
  if (!content.empty()) j.key("content").value(content);
  j.endObject();
  if (finish.empty()) j.key("finish_reason").null();
  else j.key("finish_reason").value(finish);
  j.endObject().endArray().endObject();
  return oa::sseData(j.str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* kFinish[] = {"stop", "length", "content_filter"};
  const std::string finish = kFinish[data[0] % 3];
  const size_t chunk = 1 + data[0] / 3 % 16;
  const std::string_view content(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (!simdjson::validate_utf8(content.data(), content.size())) return 0;

  // JSON -> SSE -> JSON.
  cache::Entry json_entry;
  json_entry.model = "m";
  json_entry.body = completion(content, finish);
  const auto sse = cache::replay(json_entry, cache::Wanted{oa::Endpoint::kChatCompletions, true, true});
  FUZZ_CHECK(sse.has_value(), "a JSON completion replays as a stream");
  cache::Entry sse_entry;
  sse_entry.model = "m";
  sse_entry.body = sse->body;
  sse_entry.form = cache::streamForm(sse->body);
  FUZZ_CHECK(sse_entry.form == cache::Form::kSseUsage, "the stream carries its usage");
  const auto back = cache::replay(sse_entry, cache::Wanted{oa::Endpoint::kChatCompletions, false, false});
  FUZZ_CHECK(back.has_value(), "the stream replays as JSON");
  const Answer a = readJson(back->body);
  FUZZ_CHECK(a.content == content, "the content survives JSON -> SSE -> JSON");
  FUZZ_CHECK(a.finish_reason == finish, "the finish reason survives");
  FUZZ_CHECK(a.total_tokens == 3, "the usage survives");

  // A stream in chunks (cut at character boundaries) -> JSON.
  std::string stream;
  size_t at = 0;
  bool first = true;
  while (at < content.size()) {
    size_t end = std::min(content.size(), at + chunk);
    while (end < content.size() && (static_cast<unsigned char>(content[end]) & 0xC0) == 0x80) ++end;
    stream += chunkEvent(content.substr(at, end - at), "", first);
    first = false;
    at = end;
  }
  stream += chunkEvent("", finish, first);
  stream += oa::kSseDone;
  cache::Entry chunks;
  chunks.model = "m";
  chunks.body = stream;
  chunks.form = cache::streamForm(stream);
  const auto joined = cache::replay(chunks, cache::Wanted{oa::Endpoint::kChatCompletions, false, false});
  FUZZ_CHECK(joined.has_value(), "a chunked stream replays as JSON");
  const Answer b = readJson(joined->body);
  FUZZ_CHECK(b.content == content, "chunks join to the content");
  FUZZ_CHECK(b.finish_reason == finish, "the last chunk's finish reason is kept");
  return 0;
}
