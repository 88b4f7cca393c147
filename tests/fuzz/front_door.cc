// The front door as a byte stream: what a client sends, parsed the way the
// front listener parses it (Beast's request parser with the listener's
// header and body limits, read in pieces of arbitrary size, several
// requests pipelined on one connection), the framing checks (request
// smuggling), the routing of the target (OpenAI endpoints, the Responses
// API's ids, the admin paths) and the OpenAI parser on each body.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string_view>

#include "http/framing.h"
#include "openai/openai.h"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the bytes arrive: in pieces of 1..64 bytes, or
  // all at once (0).
  const size_t piece = data[0] % 65;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  static spillway::openai::RequestParser openai_parser;
  std::string buffer;  // read but not parsed yet: the connection's buffer
  size_t fed = 0;

  while (fed < in.size() || !buffer.empty()) {  // one request each round
    bhttp::request_parser<bhttp::string_body> p;
    p.header_limit(16384);
    p.body_limit(1 << 20);
    // The head is read without eagerness (async_read_header), the body
    // eagerly (async_read), as the front listener does: Boost 1.81's eager
    // parser goes on past a body-limit error found at the end of the head.
    boost::beast::error_code ec;
    while (!p.is_done()) {
      if (!buffer.empty()) {
        p.eager(p.is_header_done());
        const size_t used = p.put(boost::asio::buffer(buffer), ec);
        buffer.erase(0, used);
        if (ec && ec != bhttp::error::need_more) break;
        ec = {};
        if (p.is_done() || (used > 0 && !buffer.empty())) continue;
      }
      if (fed == in.size()) {
        p.put_eof(ec);
        break;
      }
      const size_t n = piece == 0 ? in.size() - fed : std::min(piece, in.size() - fed);
      buffer.append(in.substr(fed, n));
      fed += n;
    }
    if (ec || !p.is_done()) return 0;  // the front door answers 400/408/413/431 and closes
    const auto& req = p.get();
    if (spillway::http::ambiguousFraming(req)) return 0;  // 400, connection closed
    const std::string_view target = req.target();
    (void)spillway::openai::targetPath(target);
    (void)spillway::openai::responseIdOfTarget(target);
    if (auto endpoint = spillway::openai::endpointForTarget(target)) {
      auto parsed = openai_parser.parse(*endpoint, req.body(), /*collect_text=*/false, req[bhttp::field::content_type]);
      (void)parsed;
    }
    if (!req.keep_alive()) break;
  }
  return 0;
}
