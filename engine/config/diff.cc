#include "config/diff.h"

#include <map>

#include "common/strings.h"
#include "config/fields.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace spillway::config {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool isSecret(const FieldDescriptor* f) { return f->name() == "api_key"; }

// A value as diffs show it: strings quoted, enums as spelled in YAML.
std::string scalar(const Message& m, const FieldDescriptor* f, int index) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: return "\"" + scalarText(m, f, index) + "\"";
    case FieldDescriptor::CPPTYPE_ENUM: return common::toLower(scalarText(m, f, index));
    case FieldDescriptor::CPPTYPE_MESSAGE: return "{...}";
    default: return scalarText(m, f, index);
  }
}

// The key a list element is matched by: its `name`, else its `model`.
std::string elementKey(const Message& m) {
  const FieldDescriptor* f = keyField(m.GetDescriptor());
  return f ? m.GetReflection()->GetString(m, f) : "";
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
