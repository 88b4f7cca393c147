#include "ui/config_schema.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <QStringList>

namespace spillway::ui {

extern const unsigned char kConfigSchema[];
extern const std::size_t kConfigSchemaSize;

namespace {

namespace pb = google::protobuf;

// Field numbers in descriptor.proto, as SourceCodeInfo paths use them.
constexpr int kFileMessageType = 4;
constexpr int kMessageField = 2;
constexpr int kMessageNested = 3;

QString clean(const std::string& comment) {
  QStringList lines;
  for (const QString& l : QString::fromStdString(comment).split('\n')) {
    const QString t = l.trimmed();
    if (!t.isEmpty()) lines << t;
  }
  return lines.join(' ');
}

// Walks the messages of a file, keeping the source path and the full name.
void collect(const pb::DescriptorProto& m, const std::string& scope, std::vector<int> path,
             const std::map<std::vector<int>, QString>& comments, std::map<std::string, QString>& out) {
  const std::string name = scope + "." + m.name();
  for (int i = 0; i < m.field_size(); ++i) {
    auto p = path;
    p.insert(p.end(), {kMessageField, i});
    if (auto it = comments.find(p); it != comments.end()) out[name + "." + m.field(i).name()] = it->second;
  }
  for (int i = 0; i < m.nested_type_size(); ++i) {
    auto p = path;
    p.insert(p.end(), {kMessageNested, i});
    collect(m.nested_type(i), name, p, comments, out);
  }
}

}  // namespace

ConfigSchema::ConfigSchema() {
  pb::FileDescriptorSet set;
  if (!set.ParseFromArray(kConfigSchema, static_cast<int>(kConfigSchemaSize))) return;
  for (const auto& file : set.file()) {
    std::map<std::vector<int>, QString> comments;
    for (const auto& loc : file.source_code_info().location()) {
      QString text = clean(loc.leading_comments());
      const QString trailing = clean(loc.trailing_comments());
      if (!trailing.isEmpty()) text = text.isEmpty() ? trailing : text + " " + trailing;
      if (!text.isEmpty()) comments[std::vector<int>(loc.path().begin(), loc.path().end())] = text;
    }
    for (int i = 0; i < file.message_type_size(); ++i) {
      collect(file.message_type(i), file.package(), {kFileMessageType, i}, comments, help_);
    }
  }
}

const ConfigSchema& ConfigSchema::get() {
  static const ConfigSchema schema;
  return schema;
}

QString ConfigSchema::help(const pb::FieldDescriptor* field) const {
  auto it = help_.find(field->full_name());
  return it == help_.end() ? QString() : it->second;
}

}  // namespace spillway::ui
