#include "ui/config_form_model.h"

#include <QBrush>
#include <QColor>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QSpinBox>
#include <algorithm>
#include <limits>

#include "config/fields.h"
#include "spillway/v1/options.pb.h"
#include "ui/config_schema.h"

namespace spillway::ui {

namespace pb = google::protobuf;

struct ConfigFormModel::Node {
  enum Kind { kRoot, kMessage, kList, kElement, kLeaf };
  Kind kind = kRoot;
  Node* parent = nullptr;
  int row = 0;
  const pb::FieldDescriptor* field = nullptr;  // null for the root
  int element = -1;                            // position in its list, for kElement
  std::string path;
  std::vector<std::unique_ptr<Node>> children;

  bool contains(const std::string& p) const {
    return p.size() > path.size() && p.compare(0, path.size(), path) == 0 &&
           (p[path.size()] == '.' || p[path.size()] == '[');
  }
};

namespace {

// A scalar's text (element `i` of a repeated field; -1 otherwise).
QString scalarText(const pb::Message& m, const pb::FieldDescriptor* f, int i) {
  return QString::fromStdString(config::scalarText(m, f, i));
}

// "At most 256." / "Range: 0–1." from (spillway.v1.range), or "".
QString rangeText(const pb::FieldDescriptor* f) {
  if (!f->options().HasExtension(v1::range)) return {};
  const v1::Range& r = f->options().GetExtension(v1::range);
  if (r.has_min() && r.has_max()) return QObject::tr("Range: %1–%2.").arg(r.min(), 0, 'g', 15).arg(r.max(), 0, 'g', 15);
  if (r.has_min()) return QObject::tr("At least %1 when set.").arg(r.min(), 0, 'g', 15);
  return QObject::tr("At most %1.").arg(r.max(), 0, 'g', 15);
}

}  // namespace

ConfigFormModel::ConfigFormModel(QObject* parent) : QAbstractItemModel(parent) { setConfig(v1::Config()); }

ConfigFormModel::~ConfigFormModel() = default;

void ConfigFormModel::setConfig(const v1::Config& config) {
  beginResetModel();
  config_ = config;
  errors_.clear();
  root_ = std::make_unique<Node>();
  build(root_.get(), v1::Config::descriptor());
  endResetModel();
}

void ConfigFormModel::build(Node* n, const pb::Descriptor* type) {
  n->children.clear();
  const pb::Message& m = messageOf(n);
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* f = type->field(i);
    auto child = std::make_unique<Node>();
    child->parent = n;
    child->row = static_cast<int>(n->children.size());
    child->field = f;
    child->path = n->path.empty() ? f->name() : n->path + "." + f->name();
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      child->kind = Node::kLeaf;
    } else if (f->is_repeated()) {
      child->kind = Node::kList;
      const int size = m.GetReflection()->FieldSize(m, f);
      for (int e = 0; e < size; ++e) {
        auto el = std::make_unique<Node>();
        el->kind = Node::kElement;
        el->parent = child.get();
        el->row = e;
        el->field = f;
        el->element = e;
        el->path = child->path + "[" + std::to_string(e) + "]";
        child->children.push_back(std::move(el));
      }
    } else {
      child->kind = Node::kMessage;
    }
    n->children.push_back(std::move(child));
  }
  for (auto& c : n->children) {
    if (c->kind == Node::kMessage) build(c.get(), c->field->message_type());
    if (c->kind != Node::kList) continue;
    for (auto& el : c->children) build(el.get(), c->field->message_type());
  }
}

void ConfigFormModel::reindex(Node* n) {
  for (size_t i = 0; i < n->children.size(); ++i) {
    Node* c = n->children[i].get();
    c->row = static_cast<int>(i);
    if (c->kind == Node::kElement) {
      c->element = c->row;
      c->path = n->path + "[" + std::to_string(c->element) + "]";
    } else {
      c->path = n->path.empty() ? c->field->name() : n->path + "." + c->field->name();
    }
    reindex(c);
  }
}

const pb::Message& ConfigFormModel::messageOf(const Node* n) const {
  switch (n->kind) {
    case Node::kRoot: return config_;
    case Node::kMessage: {
      const pb::Message& m = messageOf(n->parent);
      return m.GetReflection()->GetMessage(m, n->field);
    }
    case Node::kElement: {
      const pb::Message& m = messageOf(n->parent->parent);
      return m.GetReflection()->GetRepeatedMessage(m, n->field, n->element);
    }
    case Node::kList:
    case Node::kLeaf: return messageOf(n->parent);  // the message holding the field
  }
  return config_;
}

pb::Message* ConfigFormModel::mutableMessageOf(const Node* n) {
  switch (n->kind) {
    case Node::kRoot: return &config_;
    case Node::kMessage: {
      pb::Message* m = mutableMessageOf(n->parent);
      return m->GetReflection()->MutableMessage(m, n->field);
    }
    case Node::kElement: {
      pb::Message* m = mutableMessageOf(n->parent->parent);
      return m->GetReflection()->MutableRepeatedMessage(m, n->field, n->element);
    }
    case Node::kList:
    case Node::kLeaf: return mutableMessageOf(n->parent);
  }
  return &config_;
}

ConfigFormModel::Node* ConfigFormModel::node(const QModelIndex& index) const {
  return index.isValid() ? static_cast<Node*>(index.internalPointer()) : root_.get();
}

QModelIndex ConfigFormModel::indexOf(const Node* n, int column) const {
  if (!n || n == root_.get()) return {};
  return createIndex(n->row, column, const_cast<Node*>(n));
}

QModelIndex ConfigFormModel::index(int row, int column, const QModelIndex& parent) const {
  const Node* p = node(parent);
  if (row < 0 || column < 0 || column >= kColumnCount || row >= static_cast<int>(p->children.size())) return {};
  return createIndex(row, column, p->children[static_cast<size_t>(row)].get());
}

QModelIndex ConfigFormModel::parent(const QModelIndex& child) const {
  if (!child.isValid()) return {};
  return indexOf(node(child)->parent, 0);
}

int ConfigFormModel::rowCount(const QModelIndex& parent) const {
  if (parent.isValid() && parent.column() != 0) return 0;
  return static_cast<int>(node(parent)->children.size());
}

int ConfigFormModel::columnCount(const QModelIndex&) const { return kColumnCount; }

QVariant ConfigFormModel::value(const Node* n, int role) const {
  const pb::Message& m = messageOf(n);
  const pb::Reflection* r = m.GetReflection();
  const pb::FieldDescriptor* f = n->field;
  if (f->is_repeated()) {
    QStringList parts;
    for (int i = 0; i < r->FieldSize(m, f); ++i) parts << scalarText(m, f, i);
    return parts.join(", ");
  }
  if (role == Qt::EditRole) {
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(m, f);
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        // Qt's spin boxes hold an int: larger values edit as text.
        if (r->GetUInt32(m, f) <= static_cast<uint32_t>(std::numeric_limits<int>::max())) {
          return static_cast<int>(r->GetUInt32(m, f));
        }
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(m, f);
      default: break;
    }
  }
  return scalarText(m, f, -1);
}

QVariant ConfigFormModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid()) return {};
  const Node* n = node(index);
  const bool is_bool = n->kind == Node::kLeaf && !n->field->is_repeated() &&
                       n->field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL;
  auto own_error = [&]() -> QString {
    auto it = errors_.find(n->path);
    return it == errors_.end() ? QString() : it->second;
  };
  switch (role) {
    case Qt::DisplayRole:
    case Qt::EditRole:
      if (index.column() == kField) {
        if (n->kind != Node::kElement) return QString::fromStdString(n->field->name());
        // Named elements show their name (stable when others are removed).
        if (const auto* lf = config::keyField(n->field->message_type())) {
          const QString name = scalarText(messageOf(n), lf, -1);
          if (!name.isEmpty()) return name;
        }
        return QString("[%1]").arg(n->element);
      }
      if (n->kind == Node::kList) {
        return n->children.size() == 1 ? tr("1 item") : tr("%1 items").arg(n->children.size());
      }
      if (n->kind != Node::kLeaf || is_bool) return {};
      return value(n, role);
    case Qt::CheckStateRole:
      if (index.column() == kValue && is_bool) {
        const pb::Message& m = messageOf(n);
        return m.GetReflection()->GetBool(m, n->field) ? Qt::Checked : Qt::Unchecked;
      }
      return {};
    case Qt::ToolTipRole: {
      QString tip = data(index, kHelpRole).toString();
      if (n->field->is_repeated() && n->kind == Node::kLeaf) tip += tr(" (comma-separated)");
      const QString err = own_error();
      return err.isEmpty() ? tip : err + "\n\n" + tip;
    }
    case kHelpRole: {
      const QString help = ConfigSchema::get().help(n->field);
      const QString range = rangeText(n->field);
      return range.isEmpty() ? help : help + " " + range;
    }
    case kBoundsRole: {
      if (n->kind != Node::kLeaf || n->field->is_repeated()) return {};
      QVariantMap b;
      switch (n->field->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_UINT32:
        case pb::FieldDescriptor::CPPTYPE_UINT64: b["unsigned"] = true; break;
        case pb::FieldDescriptor::CPPTYPE_INT32:
        case pb::FieldDescriptor::CPPTYPE_INT64:
        case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        case pb::FieldDescriptor::CPPTYPE_FLOAT: b["unsigned"] = false; break;
        default: return {};
      }
      if (n->field->options().HasExtension(v1::range)) {
        const v1::Range& r = n->field->options().GetExtension(v1::range);
        if (r.has_min()) b["min"] = r.min();
        if (r.has_max()) b["max"] = r.max();
      }
      return b;
    }
    case kPathRole: return QString::fromStdString(n->path);
    case kErrorRole: return own_error();
    case kEnumNamesRole:
      if (n->kind == Node::kLeaf && !n->field->is_repeated() && n->field->cpp_type() == pb::FieldDescriptor::CPPTYPE_ENUM) {
        QStringList names;
        for (int i = 0; i < n->field->enum_type()->value_count(); ++i) {
          names << QString::fromStdString(n->field->enum_type()->value(i)->name());
        }
        return names;
      }
      return {};
    case Qt::ForegroundRole: {
      bool bad = errors_.count(n->path) > 0;
      for (auto it = errors_.begin(); !bad && it != errors_.end(); ++it) bad = n->contains(it->first);
      if (bad) return QBrush(QColor(0xd0, 0x30, 0x30));
      return {};
    }
    default: return {};
  }
}

bool ConfigFormModel::setData(const QModelIndex& index, const QVariant& v, int role) {
  if (!index.isValid() || index.column() != kValue) return false;
  Node* n = node(index);
  if (n->kind != Node::kLeaf) return false;
  const pb::FieldDescriptor* f = n->field;
  if (role == Qt::CheckStateRole && !f->is_repeated() && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
    pb::Message* m = mutableMessageOf(n);
    m->GetReflection()->SetBool(m, f, v.toInt() == Qt::Checked);
  } else if (role == Qt::EditRole) {
    // The config loader's own parsing (config::setScalarFromText): a value
    // the form accepts is one a YAML file could hold.
    // All or nothing: parse into a scratch message, then swap the field in
    // (so a refused value changes nothing, not even absent sub-messages).
    std::unique_ptr<pb::Message> scratch(messageOf(n).New());
    if (f->is_repeated()) {
      for (const QString& part : v.toString().split(',', Qt::SkipEmptyParts)) {
        if (part.trimmed().isEmpty()) continue;
        if (!config::setScalarFromText(scratch.get(), f, part.trimmed().toStdString(), true).ok()) return false;
      }
    } else {
      const bool is_string = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING;
      const QString text = is_string ? v.toString() : v.toString().trimmed();
      if (!config::setScalarFromText(scratch.get(), f, text.toStdString(), false).ok()) return false;
    }
    pb::Message* m = mutableMessageOf(n);
    m->GetReflection()->SwapFields(m, scratch.get(), {f});
  } else {
    return false;
  }
  emit dataChanged(indexOf(n, kField), indexOf(n, kValue));
  // A renamed element shows its new name in its row.
  if (n->parent->kind == Node::kElement && config::keyField(n->parent->field->message_type()) == f) {
    emit dataChanged(indexOf(n->parent, kField), indexOf(n->parent, kField));
  }
  emit edited();
  return true;
}

Qt::ItemFlags ConfigFormModel::flags(const QModelIndex& index) const {
  if (!index.isValid()) return Qt::NoItemFlags;
  Qt::ItemFlags fl = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
  const Node* n = node(index);
  if (index.column() == kValue && n->kind == Node::kLeaf) {
    if (!n->field->is_repeated() && n->field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
      fl |= Qt::ItemIsUserCheckable;
    } else {
      fl |= Qt::ItemIsEditable;
    }
  }
  return fl;
}

QVariant ConfigFormModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  return section == kField ? tr("Setting") : section == kValue ? tr("Value") : QVariant();
}

int ConfigFormModel::setErrors(const QStringList& errors) {
  std::vector<const Node*> all;
  std::vector<const Node*> stack = {root_.get()};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (n != root_.get()) all.push_back(n);
    for (const auto& c : n->children) stack.push_back(c.get());
  }
  errors_.clear();
  int placed = 0;
  for (const QString& e : errors) {
    const std::string text = e.toStdString();
    // The longest field path the error names ("path:", or "path[" / "path."
    // for a part of it that has no row of its own).
    const Node* best = nullptr;
    for (const Node* n : all) {
      if (best && n->path.size() <= best->path.size()) continue;
      for (const char* end : {":", "[", "."}) {
        const std::string probe = n->path + end;
        const size_t at = text.find(probe);
        // Whole path segments only: "url:" must not match "backends[0].url:".
        if (at != std::string::npos && (at == 0 || text[at - 1] == ' ' || text[at - 1] == ':')) {
          best = n;
          break;
        }
      }
    }
    if (!best) continue;
    QString& slot = errors_[best->path];
    slot = slot.isEmpty() ? e : slot + "\n" + e;
    ++placed;
  }
  for (const Node* n : all) emit dataChanged(indexOf(n, kField), indexOf(n, kValue));
  return placed;
}

QModelIndex ConfigFormModel::indexOfPath(const QString& path, int column) const {
  const std::string p = path.toStdString();
  const Node* n = root_.get();
  while (n && n->path != p) {
    const Node* next = nullptr;
    for (const auto& c : n->children) {
      if (c->path == p || c->contains(p)) {
        next = c.get();
        break;
      }
    }
    n = next;
  }
  return n ? indexOf(n, column) : QModelIndex();
}

bool ConfigFormModel::isList(const QModelIndex& index) const {
  return index.isValid() && node(index)->kind == Node::kList;
}

bool ConfigFormModel::isListElement(const QModelIndex& index) const {
  return index.isValid() && node(index)->kind == Node::kElement;
}

QModelIndex ConfigFormModel::addElement(const QModelIndex& list) {
  if (!isList(list)) return {};
  Node* n = node(list);
  const QModelIndex parent = indexOf(n, 0);
  const int row = static_cast<int>(n->children.size());
  beginInsertRows(parent, row, row);
  pb::Message* m = mutableMessageOf(n);
  m->GetReflection()->AddMessage(m, n->field);
  auto el = std::make_unique<Node>();
  el->kind = Node::kElement;
  el->parent = n;
  el->row = row;
  el->field = n->field;
  el->element = row;
  el->path = n->path + "[" + std::to_string(row) + "]";
  Node* raw = el.get();
  n->children.push_back(std::move(el));
  build(raw, n->field->message_type());
  endInsertRows();
  emit dataChanged(indexOf(n, kValue), indexOf(n, kValue));
  emit edited();
  return indexOf(raw, 0);
}

bool ConfigFormModel::removeElement(const QModelIndex& element) {
  if (!isListElement(element)) return false;
  Node* el = node(element);
  Node* list = el->parent;
  const int row = el->row;
  beginRemoveRows(indexOf(list, 0), row, row);
  pb::Message* m = mutableMessageOf(list);
  const pb::Reflection* r = m->GetReflection();
  for (int i = row; i + 1 < r->FieldSize(*m, list->field); ++i) r->SwapElements(m, list->field, i, i + 1);
  r->RemoveLast(m, list->field);
  list->children.erase(list->children.begin() + row);
  reindex(list);
  endRemoveRows();
  // Later elements moved up: their labels and paths changed.
  if (!list->children.empty()) {
    emit dataChanged(indexOf(list->children.front().get(), kField), indexOf(list->children.back().get(), kValue));
  }
  emit dataChanged(indexOf(list, kValue), indexOf(list, kValue));
  emit edited();
  return true;
}

QWidget* ConfigFormDelegate::createEditor(QWidget* parent, const QStyleOptionViewItem& option,
                                          const QModelIndex& index) const {
  const QStringList names = index.data(ConfigFormModel::kEnumNamesRole).toStringList();
  if (names.isEmpty()) {
    QWidget* editor = QStyledItemDelegate::createEditor(parent, option, index);
    const QVariantMap b = index.data(ConfigFormModel::kBoundsRole).toMap();
    if (b.isEmpty()) return editor;
    // Zero (unset: take the default) stays allowed below a field's minimum;
    // validation reports values between 0 and the minimum.
    const double lowest = b.value("unsigned").toBool() ? 0 : -1e15;
    if (auto* spin = qobject_cast<QSpinBox*>(editor)) {
      spin->setMinimum(static_cast<int>(std::max<double>(lowest, std::numeric_limits<int>::min())));
      if (b.contains("max")) spin->setMaximum(static_cast<int>(std::min<double>(b["max"].toDouble(), std::numeric_limits<int>::max())));
    } else if (auto* dspin = qobject_cast<QDoubleSpinBox*>(editor)) {
      dspin->setDecimals(6);
      dspin->setRange(b.contains("min") ? std::min(0.0, b["min"].toDouble()) : lowest,
                      b.contains("max") ? b["max"].toDouble() : 1e15);
    }
    return editor;
  }
  auto* box = new QComboBox(parent);
  box->addItems(names);
  return box;
}

void ConfigFormDelegate::setEditorData(QWidget* editor, const QModelIndex& index) const {
  if (auto* box = qobject_cast<QComboBox*>(editor); box && !index.data(ConfigFormModel::kEnumNamesRole).isNull()) {
    box->setCurrentText(index.data(Qt::EditRole).toString());
    return;
  }
  QStyledItemDelegate::setEditorData(editor, index);
}

void ConfigFormDelegate::setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const {
  if (auto* box = qobject_cast<QComboBox*>(editor); box && !index.data(ConfigFormModel::kEnumNamesRole).isNull()) {
    model->setData(index, box->currentText(), Qt::EditRole);
    return;
  }
  QStyledItemDelegate::setModelData(editor, model, index);
}

}  // namespace spillway::ui
