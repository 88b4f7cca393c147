// The engine's config as an editable tree, generated from the protobuf
// descriptors by reflection: one row per field (name, value, the proto
// comment as help), nested messages as branches, repeated messages
// (backends, pools, tokens) as lists whose elements can be added and
// removed, enums as choices, booleans as check boxes, repeated scalars as
// comma-separated text. A field added to config.proto appears here with no
// UI code. Validation errors (from the engine, by field path) mark their
// rows and the branches above them.
//
// Rows never hold message pointers: each access walks the field path from
// the root, reading with Get* (so looking never creates absent messages)
// and writing with Mutable*.
#pragma once

#include <QAbstractItemModel>
#include <QStringList>
#include <QStyledItemDelegate>
#include <map>
#include <memory>
#include <vector>

#include "spillway/v1/config.pb.h"

namespace spillway::ui {

class ConfigFormModel final : public QAbstractItemModel {
  Q_OBJECT
 public:
  enum Column { kField, kValue, kColumnCount };
  static constexpr int kHelpRole = Qt::UserRole + 1;        // the field's comment
  static constexpr int kPathRole = Qt::UserRole + 2;        // e.g. "backends[0].url"
  static constexpr int kEnumNamesRole = Qt::UserRole + 3;   // QStringList, for enum fields
  static constexpr int kErrorRole = Qt::UserRole + 4;       // the error text on this row, if any
  // Numeric leaves: QVariantMap with "min"/"max" (from the field's
  // (spillway.v1.range), the bounds validation enforces) and "unsigned".
  static constexpr int kBoundsRole = Qt::UserRole + 5;

  explicit ConfigFormModel(QObject* parent = nullptr);
  ~ConfigFormModel() override;

  void setConfig(const v1::Config& config);  // resets the tree
  const v1::Config& config() const { return config_; }

  // Marks rows from engine validation errors ("...path: message" lines).
  // Returns how many errors were placed on a row.
  int setErrors(const QStringList& errors);

  // The row of a field path ("server.listen", "backends[1].weight"), or invalid.
  QModelIndex indexOfPath(const QString& path, int column = kField) const;
  // Repeated message fields: append an element (returns it) or remove one.
  bool isList(const QModelIndex& index) const;
  bool isListElement(const QModelIndex& index) const;
  QModelIndex addElement(const QModelIndex& list);
  bool removeElement(const QModelIndex& element);

  QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
  QModelIndex parent(const QModelIndex& child) const override;
  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 signals:
  void edited();  // a value changed, or an element was added or removed

 private:
  struct Node;
  Node* node(const QModelIndex& index) const;
  QModelIndex indexOf(const Node* n, int column) const;
  void build(Node* n, const google::protobuf::Descriptor* type);
  void reindex(Node* n);
  const google::protobuf::Message& messageOf(const Node* n) const;
  google::protobuf::Message* mutableMessageOf(const Node* n);
  QVariant value(const Node* n, int role) const;
  bool setValue(Node* n, const QVariant& value);

  v1::Config config_;
  std::unique_ptr<Node> root_;
  std::map<std::string, QString> errors_;  // by path
};

// Enum fields edit with a combo box of their value names; numbers with spin
// boxes bounded by the field's range; the rest as Qt's defaults.
class ConfigFormDelegate final : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
  void setEditorData(QWidget* editor, const QModelIndex& index) const override;
  void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override;
};

}  // namespace spillway::ui
