// The config schema's documentation at run time: the comments written above
// each field in config.proto, read from a descriptor set that the build
// embeds (protoc --include_source_info). The Policies forms show them as
// help, so a field added to the proto is documented in the console with no
// UI code.
#pragma once

#include <QString>
#include <map>
#include <string>

namespace google::protobuf {
class FieldDescriptor;
}

namespace spillway::ui {

class ConfigSchema {
 public:
  static const ConfigSchema& get();
  // The field's comment (leading and trailing, joined), or "".
  QString help(const google::protobuf::FieldDescriptor* field) const;
  size_t documentedFields() const { return help_.size(); }

 private:
  ConfigSchema();
  std::map<std::string, QString> help_;  // by full field name, e.g. "spillway.v1.Backend.weight"
};

}  // namespace spillway::ui
