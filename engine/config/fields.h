// Scalar config fields as text, both ways, by reflection: what the YAML
// loader writes, what diffs and the console's form show, and what the form
// writes back. One implementation, so a value reads and parses the same
// everywhere.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace spillway::config {

// Parses `text` as a value of the scalar field `f` and sets it (or, with
// `add`, appends it to the repeated field). InvalidArgument, with the
// message the loader reports, when the text is no value of that type.
// Booleans take true/false/yes/no/on/off; enums their names in any case.
absl::Status setScalarFromText(google::protobuf::Message* m, const google::protobuf::FieldDescriptor* f,
                               const std::string& text, bool add);

// The value of scalar field `f` (element `index` when repeated) as plain
// text: strings unquoted, enums by their proto name, numbers round-tripping.
std::string scalarText(const google::protobuf::Message& m, const google::protobuf::FieldDescriptor* f,
                       int index = -1);

// The field that names an element of a list (`name`, else `model`), or null.
const google::protobuf::FieldDescriptor* keyField(const google::protobuf::Descriptor* d);

}  // namespace spillway::config
