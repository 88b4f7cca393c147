// The Policies page: the running config as YAML, validated by the engine as
// you type (errors shown with their line), a field-by-field diff against the
// running config, apply with a comment (refused if another change landed
// since it was loaded), and the version history with one-click rollback.
#pragma once

#include <QWidget>
#include <functional>

#include "control/engine_client.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QTableWidget;
class QTimer;

namespace spillway::ui {

class PoliciesPage final : public QWidget {
  Q_OBJECT
 public:
  PoliciesPage(control::EngineClient& client, QWidget* parent = nullptr);

  QPlainTextEdit* editor() { return editor_; }
  QLineEdit* comment() { return comment_; }
  QListWidget* errors() { return errors_; }
  QPlainTextEdit* diffView() { return diff_; }
  QTableWidget* history() { return history_; }
  int64_t loadedVersion() const { return loaded_version_; }
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }

 public slots:
  void reload();           // the running config into the editor, and the history
  void validateNow();      // runs the engine's validation on the editor text
  bool showDiff();         // false when the text is invalid
  bool apply();            // true when a new version is running
  bool rollbackSelected(); // to the version selected in the history

 signals:
  void message(const QString& text);
  void applied(qint64 version);

 private:
  v1::ConfigSource source() const;
  void loadHistory();

  control::EngineClient& client_;
  QPlainTextEdit* editor_;
  QListWidget* errors_;
  QPlainTextEdit* diff_;
  QLineEdit* comment_;
  QTableWidget* history_;
  QTimer* debounce_;
  int64_t loaded_version_ = 0;
  std::function<bool(const QString&)> confirm_;
};

}  // namespace spillway::ui
