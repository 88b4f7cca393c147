// The Policies page: the running config as a form generated from the
// schema (ConfigFormModel) and as YAML, both validated by the engine as you
// edit (errors at their field, or at their line), a field-by-field diff
// against the running config, apply with a comment (refused if another
// change landed since it was loaded), and the version history with
// one-click rollback.
//
// The two views edit one config: switching tabs carries the edits over
// (form to text as JSON, which is YAML; text to form through the engine's
// own loader, refused while the text has errors). Diff and apply use the
// view in front.
#pragma once

#include <QWidget>
#include <functional>

#include "control/engine_client.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QTableWidget;
class QTabWidget;
class QTimer;
class QTreeView;

namespace spillway::ui {

class PoliciesPage final : public QWidget {
  Q_OBJECT
 public:
  PoliciesPage(control::EngineClient& client, QWidget* parent = nullptr);

  QPlainTextEdit* editor() { return editor_; }
  class ConfigFormModel* form() { return form_; }
  QTreeView* formView() { return form_view_; }
  // 0 = form, 1 = YAML; switching carries the edits over (false if it cannot).
  bool showView(int index);
  int currentView() const;
  QLineEdit* comment() { return comment_; }
  QListWidget* errors() { return errors_; }
  QPlainTextEdit* diffView() { return diff_; }
  QTableWidget* history() { return history_; }
  int64_t loadedVersion() const { return loaded_version_; }
  void setConfirm(std::function<bool(const QString&)> confirm) { confirm_ = std::move(confirm); }

 public slots:
  void reload();           // the running config into the editor, and the history
  void validateNow();      // runs the engine's validation on the view in front
  bool showDiff();         // false when the text is invalid
  bool apply();            // true when a new version is running
  bool rollbackSelected(); // to the version selected in the history

 signals:
  void message(const QString& text);
  void applied(qint64 version);

 private:
  v1::ConfigSource source() const;
  void loadHistory();
  void setEditorText(const QString& text);  // without marking the text edited
  bool syncTextToForm();
  void syncFormToText();

  control::EngineClient& client_;
  QTabWidget* tabs_;
  ConfigFormModel* form_;
  QTreeView* form_view_;
  QLabel* help_;
  QPlainTextEdit* editor_;
  bool text_edited_ = false;  // the YAML changed since the form was last synced
  bool form_edited_ = false;  // and the other way round
  int view_ = 0;              // the tab the edits were made in
  QListWidget* errors_;
  QPlainTextEdit* diff_;
  QLineEdit* comment_;
  QTableWidget* history_;
  QTimer* debounce_;
  int64_t loaded_version_ = 0;
  std::function<bool(const QString&)> confirm_;
};

}  // namespace spillway::ui
