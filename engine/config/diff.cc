#include "config/diff.h"

#include <map>

#include "common/strings.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace spillway::config {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool isSecret(const FieldDescriptor* f) { return f->name() == "api_key"; }

std::string scalar(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return "\"" + (rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f)) + "\"";
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      char b[32];
      std::snprintf(b, sizeof b, "%g", rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      return b;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      char b[32];
      std::snprintf(b, sizeof b, "%g", rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
      return b;
    }
    case FieldDescriptor::CPPTYPE_ENUM:
      return common::toLower((rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name());
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "{...}";
  }
  return "?";
}

// The key a list element is matched by: its `name`, else its `model`.
std::string elementKey(const Message& m) {
  for (const char* k : {"name", "model"}) {
    const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(k);
    if (f && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING && !f->is_repeated()) {
      std::string v = m.GetReflection()->GetString(m, f);
      if (!v.empty()) return v;
    }
  }
  return "";
}

void diffInto(const Message& a, const Message& b, const std::string& path, std::vector<std::string>& out);

void diffRepeatedMessages(const Message& a, const Message& b, const FieldDescriptor* f, const std::string& p,
                          std::vector<std::string>& out) {
  const Reflection* ra = a.GetReflection();
  const Reflection* rb = b.GetReflection();
  const int na = ra->FieldSize(a, f), nb = rb->FieldSize(b, f);
  bool keyed = true;
  std::map<std::string, int> ia, ib;
  for (int i = 0; i < na && keyed; ++i) {
    std::string k = elementKey(ra->GetRepeatedMessage(a, f, i));
    keyed = !k.empty() && ia.emplace(k, i).second;
  }
  for (int i = 0; i < nb && keyed; ++i) {
    std::string k = elementKey(rb->GetRepeatedMessage(b, f, i));
    keyed = !k.empty() && ib.emplace(k, i).second;
  }
  if (keyed) {
    for (int i = 0; i < na; ++i) {
      const Message& ea = ra->GetRepeatedMessage(a, f, i);
      std::string k = elementKey(ea);
      std::string ep = common::strCat(p, "[", k, "]");
      auto it = ib.find(k);
      if (it == ib.end()) out.push_back(ep + ": removed");
      else diffInto(ea, rb->GetRepeatedMessage(b, f, it->second), ep, out);
    }
    for (int i = 0; i < nb; ++i) {
      std::string k = elementKey(rb->GetRepeatedMessage(b, f, i));
      if (!ia.count(k)) out.push_back(common::strCat(p, "[", k, "]: added"));
    }
    return;
  }
  for (int i = 0; i < std::max(na, nb); ++i) {
    std::string ep = common::strCat(p, "[", i, "]");
    if (i >= nb) out.push_back(ep + ": removed");
    else if (i >= na) out.push_back(ep + ": added");
    else diffInto(ra->GetRepeatedMessage(a, f, i), rb->GetRepeatedMessage(b, f, i), ep, out);
  }
}

std::string listText(const Message& m, const FieldDescriptor* f) {
  std::vector<std::string> items;
  for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i) items.push_back(scalar(m, f, i));
  return "[" + common::join(items, ", ") + "]";
}

void diffInto(const Message& a, const Message& b, const std::string& path, std::vector<std::string>& out) {
  const auto* d = a.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string p = path.empty() ? f->name() : path + "." + f->name();
    if (f->is_repeated()) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        diffRepeatedMessages(a, b, f, p, out);
      } else {
        std::string la = listText(a, f), lb = listText(b, f);
        if (la != lb) out.push_back(common::strCat(p, ": ", la, " -> ", lb));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      diffInto(a.GetReflection()->GetMessage(a, f), b.GetReflection()->GetMessage(b, f), p, out);
    } else {
      std::string va = scalar(a, f, -1), vb = scalar(b, f, -1);
      if (va == vb) continue;
      out.push_back(isSecret(f) ? p + ": (changed)" : common::strCat(p, ": ", va, " -> ", vb));
    }
  }
}

}  // namespace

std::vector<std::string> diffMessages(const Message& before, const Message& after) {
  std::vector<std::string> out;
  diffInto(before, after, "", out);
  return out;
}

std::string diffText(const Message& before, const Message& after) {
  return common::join(diffMessages(before, after), "\n");
}

}  // namespace spillway::config
