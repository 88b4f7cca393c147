// What a hostile or broken backend can send: a response (status line,
// headers, a Content-Length or chunked body) parsed as the upstream
// exchange parses it, then the body as the cache's replay reads it — a
// stored SSE stream turned into a JSON completion, a JSON completion into
// a stream, the stream's form (with or without usage).
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "cache/replay.h"

namespace bhttp = boost::beast::http;
namespace cache = spillway::cache;
namespace oa = spillway::openai;

namespace {

void replayBody(std::string_view body, bool sse) {
  cache::Entry e;
  e.model = "m";
  e.body = std::string(body);
  e.form = sse ? cache::streamForm(body) : cache::Form::kJson;
  for (oa::Endpoint endpoint : {oa::Endpoint::kChatCompletions, oa::Endpoint::kCompletions}) {
    for (bool stream : {false, true}) {
      auto r = cache::replay(e, cache::Wanted{endpoint, stream, stream});
      (void)r;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  bhttp::response_parser<bhttp::string_body> p;
  p.header_limit(16384);
  p.body_limit(1 << 20);
  // The head first, not eagerly, as the exchange reads it (async_read_header):
  // Boost 1.81's eager parser reports a body over the limit at the end of
  // the head, then goes on into the body and reserves the announced length.
  boost::beast::error_code ec;
  size_t used = p.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (!ec && !p.is_done()) {
    p.eager(true);
    used += p.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    if (ec == bhttp::error::need_more) ec = {};
  }
  if (!ec && !p.is_done()) p.put_eof(ec);
  if (!ec && p.is_done()) {
    const auto& res = p.get();
    const bool sse = res[bhttp::field::content_type].starts_with("text/event-stream");
    replayBody(res.body(), sse);
  }
  // The raw bytes as a stored body too (what the disk or Redis tier hands
  // back if its file or key was tampered with).
  replayBody(in, true);
  replayBody(in, false);
  return 0;
}
