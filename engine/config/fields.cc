#include "config/fields.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/strings.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace spillway::config {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

namespace {

template <typename T>
absl::Status parseInt(const std::string& s, T& out, const char* what) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return absl::InvalidArgumentError(common::strCat("expected ", what, ", got \"", s, "\"",
                                                     ec == std::errc::result_out_of_range ? " (out of range)" : ""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status setScalarFromText(Message* msg, const FieldDescriptor* fd, const std::string& s, bool add) {
  const Reflection* r = msg->GetReflection();
  switch (fd->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      add ? r->AddString(msg, fd, s) : r->SetString(msg, fd, s);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL: {
      const std::string l = common::toLower(s);
      bool b;
      if (l == "true" || l == "yes" || l == "on") b = true;
      else if (l == "false" || l == "no" || l == "off") b = false;
      else return absl::InvalidArgumentError(common::strCat("expected true or false, got \"", s, "\""));
      add ? r->AddBool(msg, fd, b) : r->SetBool(msg, fd, b);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t x = 0;
      if (auto st = parseInt(s, x, "an integer"); !st.ok()) return st;
      add ? r->AddInt32(msg, fd, x) : r->SetInt32(msg, fd, x);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t x = 0;
      if (auto st = parseInt(s, x, "an integer"); !st.ok()) return st;
      add ? r->AddInt64(msg, fd, x) : r->SetInt64(msg, fd, x);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t x = 0;
      if (auto st = parseInt(s, x, "a non-negative integer"); !st.ok()) return st;
      add ? r->AddUInt32(msg, fd, x) : r->SetUInt32(msg, fd, x);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t x = 0;
      if (auto st = parseInt(s, x, "a non-negative integer"); !st.ok()) return st;
      add ? r->AddUInt64(msg, fd, x) : r->SetUInt64(msg, fd, x);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      char* end = nullptr;
      errno = 0;
      const double x = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE) {
        return absl::InvalidArgumentError(common::strCat("expected a number, got \"", s, "\""));
      }
      if (fd->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        add ? r->AddDouble(msg, fd, x) : r->SetDouble(msg, fd, x);
      } else {
        add ? r->AddFloat(msg, fd, static_cast<float>(x)) : r->SetFloat(msg, fd, static_cast<float>(x));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      // The zero value's name (e.g. FAILURE_KIND_UNSPECIFIED, as printed by
      // `spillctl config get`) is accepted and means "unset".
      const auto* e = fd->enum_type()->FindValueByName(common::toUpper(s));
      if (!e) {
        std::vector<std::string> names;
        for (int i = 1; i < fd->enum_type()->value_count(); ++i) {
          names.push_back(common::toLower(fd->enum_type()->value(i)->name()));
        }
        return absl::InvalidArgumentError(
            common::strCat("unknown value \"", s, "\"; expected one of: ", common::join(names, ", ")));
      }
      add ? r->AddEnum(msg, fd, e) : r->SetEnum(msg, fd, e);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InvalidArgumentError("expected a single value");
}

std::string scalarText(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  char b[32];
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: return rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_BOOL: return (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_INT32: return std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64: return std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      std::snprintf(b, sizeof b, "%.15g", rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      return b;
    case FieldDescriptor::CPPTYPE_FLOAT:
      std::snprintf(b, sizeof b, "%.7g", rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      return b;
    case FieldDescriptor::CPPTYPE_ENUM: return (rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name();
    case FieldDescriptor::CPPTYPE_MESSAGE: break;
  }
  return "";
}

const FieldDescriptor* keyField(const Descriptor* d) {
  for (const char* name : {"name", "model"}) {
    const FieldDescriptor* f = d->FindFieldByName(name);
    if (f && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING && !f->is_repeated()) return f;
  }
  return nullptr;
}

}  // namespace spillway::config
