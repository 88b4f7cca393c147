#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "config/fields.h"
#include "config/validate.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"

namespace spillway::config {

extern const char kDefaultConfigYaml[];  // generated from resources/config/default.yaml

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const Descriptor* d, std::string_view key) {
  std::string best;
  size_t best_d = std::max<size_t>(2, key.size() / 3) + 1;
  for (int i = 0; i < d->field_count(); ++i) {
    const std::string& name = d->field(i)->name();
    size_t dist = editDistance(common::toLower(key), name);
    if (dist < best_d) {
      best_d = dist;
      best = name;
    }
  }
  return best.empty() ? "" : common::strCat(" (did you mean \"", best, "\"?)");
}

std::string fieldNames(const Descriptor* d) {
  std::vector<std::string> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  return common::join(names, ", ");
}

SourcePosition positionOf(const YAML::Node& n) {
  auto m = n.Mark();
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

// Where mapping writes: errors and (optionally) positions.
struct MapOutput {
  std::vector<ConfigError>& errors;
  SourceMap* sources;
  void record(const std::string& path, SourcePosition pos) {
    if (sources) sources->record(path, pos);
  }
};

class Mapper {
 public:
  Mapper(const std::string& file, MapOutput out) : file_(file), out_(out) {}

  void mapMessage(const YAML::Node& node, Message* msg, const std::string& path) {
    out_.record(path, positionOf(node));
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      error(node, path, common::strCat("expected a mapping of ", msg->GetDescriptor()->name(),
                                     " fields, got ", kindName(node)));
      return;
    }
    const Descriptor* d = msg->GetDescriptor();
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies: yaml-cpp's iterator yields a temporary pair (ASan caught a reference).
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      if (!k.IsScalar()) {
        error(k, path, "keys must be plain names");
        continue;
      }
      const std::string key = k.Scalar();
      const FieldDescriptor* fd = d->FindFieldByName(key);
      std::string fpath = path.empty() ? key : common::strCat(path, ".", key);
      if (!fd) {
        std::string hint = suggestion(d, key);
        if (hint.empty()) hint = common::strCat("; valid fields: ", fieldNames(d));
        error(k, fpath, common::strCat("unknown field \"", key, "\"", hint));
        continue;
      }
      out_.record(fpath, positionOf(v.IsNull() ? k : v));
      if (v.IsNull()) continue;  // "key:" with no value leaves the default
      if (fd->is_repeated()) {
        if (!v.IsSequence()) {
          error(v, fpath, common::strCat("expected a list, got ", kindName(v)));
          continue;
        }
        for (size_t i = 0; i < v.size(); ++i) {
          std::string epath = common::strCat(fpath, "[", i, "]");
          out_.record(epath, positionOf(v[i]));
          mapRepeatedElement(v[i], msg, fd, epath);
        }
      } else if (fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        mapMessage(v, msg->GetReflection()->MutableMessage(msg, fd), fpath);
      } else {
        mapScalar(v, msg, fd, fpath, false);
      }
    }
  }

 private:
  static const char* kindName(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map: return "a mapping";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Scalar: return "a scalar";
      default: return "nothing";
    }
  }

  void error(const YAML::Node& at, const std::string& path, std::string message) {
    auto pos = positionOf(at);
    out_.errors.push_back({file_, pos.line, pos.column, path, std::move(message)});
  }

  void mapRepeatedElement(const YAML::Node& v, Message* msg, const FieldDescriptor* fd,
                          const std::string& path) {
    if (fd->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      mapMessage(v, msg->GetReflection()->AddMessage(msg, fd), path);
    } else {
      mapScalar(v, msg, fd, path, true);
    }
  }

  void mapScalar(const YAML::Node& v, Message* msg, const FieldDescriptor* fd,
                 const std::string& path, bool repeated) {
    if (!v.IsScalar()) {
      error(v, path, common::strCat("expected a single value, got ", kindName(v)));
      return;
    }
    if (auto st = setScalarFromText(msg, fd, v.Scalar(), repeated); !st.ok()) error(v, path, std::string(st.message()));
  }

  const std::string& file_;
  MapOutput out_;
};

}  // namespace

std::string_view defaultConfigYaml() { return kDefaultConfigYaml; }

std::vector<ConfigError> mapYaml(std::string_view yaml_text, const std::string& file,
                                 google::protobuf::Message* message, SourceMap* sources) {
  std::vector<ConfigError> errors;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
    Mapper(file, MapOutput{errors, sources}).mapMessage(root, message, "");
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports syntax errors by exception; turn it into a located error.
    errors.push_back({file, e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0,
                      "", e.msg});
  }
  return errors;
}

LoadResult loadYaml(std::string_view yaml_text, const std::string& file) {
  LoadResult out;
  out.errors = mapYaml(yaml_text, file, &out.config, &out.sources);
  if (!out.errors.empty() && out.errors[0].path.empty() && out.errors.size() == 1 &&
      out.config.ByteSizeLong() == 0) {
    return out;  // a syntax error: nothing to validate
  }
  // Validate even when mapping failed, so every error shows at once; but
  // drop what a mapping error already explains (its path or anything under
  // or above it), e.g. "url is required" after "url: expected a string".
  auto related = [](const std::string& a, const std::string& b) {
    auto under = [](const std::string& x, const std::string& parent) {
      return x.size() > parent.size() && x.compare(0, parent.size(), parent) == 0 &&
             (x[parent.size()] == '.' || x[parent.size()] == '[');
    };
    return a == b || under(a, b) || under(b, a);
  };
  const size_t mapping_errors = out.errors.size();
  for (auto& e : validate(out.config, &out.sources, file)) {
    bool explained = false;
    for (size_t i = 0; i < mapping_errors && !explained; ++i) explained = related(e.path, out.errors[i].path);
    if (!explained) out.errors.push_back(std::move(e));
  }
  return out;
}

LoadResult loadYamlFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult out;
    out.errors.push_back({path, 0, 0, "", common::strCat("cannot read file: ", std::strerror(errno))});
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return loadYaml(ss.str(), path);
}

absl::StatusOr<v1::Config> loadEffectiveConfig(std::string_view yaml_text, const std::string& file) {
  auto r = loadYaml(yaml_text, file);
  if (!r.ok()) return absl::InvalidArgumentError(formatErrors(r.errors));
  applyDefaults(r.config);
  return std::move(r.config);
}

}  // namespace spillway::config
