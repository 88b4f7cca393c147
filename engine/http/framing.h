// The front door's framing check (request smuggling): a message framed
// both ways, or with several lengths, is ambiguous between us and any
// proxy in front of us, and is refused with 400 before anything else.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/field.hpp>

namespace spillway::http {

inline bool ambiguousFraming(const boost::beast::http::fields& head) {
  namespace bhttp = boost::beast::http;
  return head.count(bhttp::field::content_length) > 1 ||
         (head.count(bhttp::field::transfer_encoding) && head.count(bhttp::field::content_length));
}

}  // namespace spillway::http
