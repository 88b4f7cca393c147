// A small streaming JSON writer for the responses the engine builds itself
// (errors, /v1/models, simulator completions). Parsing goes through simdjson;
// writing is simple enough that a string builder with correct escaping is
// clearer and faster than building a DOM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace spillway::common {

// Appends `s` to `out` as a JSON string literal, quotes included.
void appendJsonString(std::string& out, std::string_view s);

// Builds one JSON document. Commas are inserted automatically. Not
// thread-safe; cheap to create per response.
class JsonWriter {
 public:
  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  // Writes a key inside an object; the next call writes its value.
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view v);
  JsonWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(uint64_t v);
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(unsigned v) { return value(static_cast<uint64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  // Inserts an already-serialised JSON value verbatim.
  JsonWriter& raw(std::string_view json);

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void separate();
  std::string out_;
  bool need_comma_ = false;
  bool after_key_ = false;
};

}  // namespace spillway::common
