#include "ui/policies_page.h"

#include <google/protobuf/util/json_util.h>

#include <QDateTime>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTabWidget>
#include <QToolButton>
#include <QTreeView>
#include <QTextBlock>
#include <QTimer>
#include <QVBoxLayout>

#include "config/config_loader.h"
#include "ui/config_form_model.h"
#include "ui/text.h"
#include "ui/yaml_highlighter.h"

namespace spillway::ui {

PoliciesPage::PoliciesPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), tabs_(new QTabWidget(this)), form_(new ConfigFormModel(this)),
      form_view_(new QTreeView(this)), help_(new QLabel(this)), editor_(new QPlainTextEdit(this)),
      errors_(new QListWidget(this)),
      diff_(new QPlainTextEdit(this)), comment_(new QLineEdit(this)), history_(new QTableWidget(this)),
      debounce_(new QTimer(this)) {
  editor_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  editor_->setLineWrapMode(QPlainTextEdit::NoWrap);
  new YamlHighlighter(editor_->document());
  diff_->setReadOnly(true);
  diff_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  diff_->setPlaceholderText(tr("Diff against the running config appears here"));
  comment_->setPlaceholderText(tr("Why this change (recorded with the version)"));
  debounce_->setSingleShot(true);
  debounce_->setInterval(300);
  connect(editor_, &QPlainTextEdit::textChanged, this, [this] {
    text_edited_ = true;
    debounce_->start();
  });
  connect(form_, &ConfigFormModel::edited, this, [this] {
    form_edited_ = true;
    debounce_->start();
  });
  form_view_->setModel(form_);
  form_view_->setItemDelegate(new ConfigFormDelegate(form_view_));
  form_view_->setAlternatingRowColors(true);
  form_view_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed |
                              QAbstractItemView::SelectedClicked | QAbstractItemView::AnyKeyPressed);
  form_view_->setColumnWidth(ConfigFormModel::kField, 260);
  help_->setWordWrap(true);
  help_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  help_->setMinimumHeight(48);
  help_->setText(tr("Select a setting to see its help."));
  help_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  connect(form_view_->selectionModel(), &QItemSelectionModel::currentChanged, this, [this](const QModelIndex& i) {
    const QString path = i.data(ConfigFormModel::kPathRole).toString();
    const QString help = i.data(ConfigFormModel::kHelpRole).toString();
    const QString err = i.data(ConfigFormModel::kErrorRole).toString();
    help_->setText(QString("<b>%1</b><br>%2%3")
                       .arg(path.toHtmlEscaped(), help.toHtmlEscaped(),
                            err.isEmpty() ? QString() : "<br><font color=#d03030>" + err.toHtmlEscaped() + "</font>"));
  });
  connect(debounce_, &QTimer::timeout, this, &PoliciesPage::validateNow);
  connect(errors_, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) {
    if (currentView() == 0) {  // the form: select the field the error names ("path: message")
      const QString text = item->text();
      const int colon = text.indexOf(": ");
      const QModelIndex at = form_->indexOfPath(colon > 0 ? text.left(colon) : text);
      if (at.isValid()) {
        form_view_->scrollTo(at);
        form_view_->setCurrentIndex(at);
        form_view_->setFocus();
      }
      return;
    }
    // Jump to the error's line ("file:LINE:COL: ...").
    const QStringList parts = item->text().split(':');
    bool ok = false;
    const int line = parts.size() > 2 ? parts[1].toInt(&ok) : 0;
    if (!ok || line <= 0) return;
    QTextCursor c(editor_->document()->findBlockByLineNumber(line - 1));
    editor_->setTextCursor(c);
    editor_->setFocus();
  });

  history_->setColumnCount(5);
  history_->setHorizontalHeaderLabels({tr("Version"), tr("When"), tr("Who"), tr("Comment"), tr("Changes")});
  history_->horizontalHeader()->setStretchLastSection(true);
  history_->setSelectionBehavior(QAbstractItemView::SelectRows);
  history_->setSelectionMode(QAbstractItemView::SingleSelection);
  history_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  history_->verticalHeader()->hide();

  auto* reload_button = new QPushButton(tr("&Reload"), this);
  auto* diff = new QPushButton(tr("D&iff"), this);
  auto* apply = new QPushButton(tr("&Apply"), this);
  auto* rollback = new QPushButton(tr("Roll &back to selected"), this);
  apply->setDefault(true);
  apply->setShortcut(QKeySequence("Ctrl+Return"));
  apply->setToolTip(tr("Validate, show the diff, confirm and apply (Ctrl+Return)"));
  diff->setToolTip(tr("Diff against the running config (Alt+I)"));
  connect(reload_button, &QPushButton::clicked, this, &PoliciesPage::reload);
  connect(diff, &QPushButton::clicked, this, &PoliciesPage::showDiff);
  connect(apply, &QPushButton::clicked, this, &PoliciesPage::apply);
  connect(rollback, &QPushButton::clicked, this, &PoliciesPage::rollbackSelected);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(comment_, 1);
  buttons->addWidget(reload_button);
  buttons->addWidget(diff);
  buttons->addWidget(apply);
  auto* add = new QToolButton(this);
  add->setText(tr("Add item"));
  add->setToolTip(tr("Append an element to the selected list (backends, pools, tokens…)"));
  auto* remove = new QToolButton(this);
  remove->setText(tr("Remove item"));
  remove->setToolTip(tr("Remove the selected list element"));
  connect(add, &QToolButton::clicked, this, [this] {
    QModelIndex at = form_view_->currentIndex().siblingAtColumn(0);
    while (at.isValid() && !form_->isList(at)) at = at.parent();
    if (!at.isValid()) {
      emit message(tr("Select a list (e.g. backends) first."));
      return;
    }
    const QModelIndex el = form_->addElement(at);
    form_view_->expand(at);
    form_view_->expand(el);
    form_view_->setCurrentIndex(el);
  });
  connect(remove, &QToolButton::clicked, this, [this] {
    QModelIndex at = form_view_->currentIndex().siblingAtColumn(0);
    while (at.isValid() && !form_->isListElement(at)) at = at.parent();
    if (!at.isValid()) {
      emit message(tr("Select a list element first."));
      return;
    }
    form_->removeElement(at);
  });
  auto* form_page = new QWidget(this);
  auto* fv = new QVBoxLayout(form_page);
  fv->setContentsMargins(0, 0, 0, 0);
  auto* form_buttons = new QHBoxLayout;
  form_buttons->addWidget(new QLabel(tr("Double-click a value to edit; hover for help"), form_page), 1);
  form_buttons->addWidget(add);
  form_buttons->addWidget(remove);
  fv->addLayout(form_buttons);
  fv->addWidget(form_view_, 1);
  fv->addWidget(help_);
  tabs_->addTab(form_page, tr("&Form"));
  tabs_->addTab(editor_, tr("&YAML"));
  connect(tabs_, &QTabWidget::currentChanged, this, [this](int index) {
    if (index == view_) return;
    if (!showView(index)) {
      const QSignalBlocker block(tabs_);
      tabs_->setCurrentIndex(view_);
    }
  });

  auto* left = new QWidget(this);
  auto* lv = new QVBoxLayout(left);
  lv->setContentsMargins(0, 0, 0, 0);
  lv->addWidget(new QLabel(tr("Config: as a form generated from the schema, or as YAML (JSON is YAML too)"), left));
  lv->addWidget(tabs_, 3);
  lv->addWidget(new QLabel(tr("Problems"), left));
  lv->addWidget(errors_, 1);
  lv->addLayout(buttons);
  auto* right = new QWidget(this);
  auto* rv = new QVBoxLayout(right);
  rv->setContentsMargins(0, 0, 0, 0);
  rv->addWidget(new QLabel(tr("Diff"), right));
  rv->addWidget(diff_, 1);
  rv->addWidget(new QLabel(tr("History"), right));
  rv->addWidget(history_, 2);
  rv->addWidget(rollback);
  auto* split = new QSplitter(this);
  split->addWidget(left);
  split->addWidget(right);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);

  confirm_ = [this](const QString& q) { return QMessageBox::question(this, tr("Confirm"), q) == QMessageBox::Yes; };
  reload();
}

v1::ConfigSource PoliciesPage::source() const {
  v1::ConfigSource s;
  if (view_ == 0) {
    *s.mutable_config() = form_->config();
    return s;
  }
  s.set_yaml(editor_->toPlainText().toStdString());
  s.set_file("editor");
  return s;
}

int PoliciesPage::currentView() const { return view_; }

bool PoliciesPage::showView(int index) {
  if (index == view_) return true;
  if (index == 0) {
    if (!syncTextToForm()) {
      emit message(tr("The YAML has problems: fix them to edit it as a form."));
      return false;
    }
  } else {
    syncFormToText();
  }
  view_ = index;
  if (tabs_->currentIndex() != index) {
    const QSignalBlocker block(tabs_);
    tabs_->setCurrentIndex(index);
  }
  validateNow();
  return true;
}

void PoliciesPage::setEditorText(const QString& text) {
  const QSignalBlocker block(editor_);
  editor_->setPlainText(text);
  text_edited_ = false;
}

bool PoliciesPage::syncTextToForm() {
  if (!text_edited_) return true;
  auto loaded = config::loadYaml(editor_->toPlainText().toStdString(), "editor");
  if (!loaded.errors.empty()) {
    validateNow();
    return false;
  }
  form_->setConfig(loaded.config);
  form_view_->expandToDepth(0);
  text_edited_ = false;
  form_edited_ = true;  // the form now differs from what was loaded
  return true;
}

void PoliciesPage::syncFormToText() {
  if (!form_edited_) return;
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(form_->config(), &json, o);
  setEditorText(qs(json));
  form_edited_ = false;
  text_edited_ = true;  // so switching back re-reads it
}

void PoliciesPage::reload() {
  auto view = client_.getConfig();
  if (!view.ok()) {
    emit message(tr("Cannot read the config: %1").arg(qs(view.status().message())));
    return;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(view->config(), &json, o);
  loaded_version_ = view->version();
  setEditorText(qs(json));
  form_->setConfig(view->config());
  form_view_->expandToDepth(0);
  text_edited_ = form_edited_ = false;
  debounce_->stop();
  errors_->clear();
  diff_->clear();
  loadHistory();
}

void PoliciesPage::loadHistory() {
  auto list = client_.listConfigVersions(100);
  if (!list.ok()) return;
  history_->setRowCount(list->versions_size());
  for (int i = 0; i < list->versions_size(); ++i) {
    const auto& v = list->versions(i);
    const QString id = QString("v%1%2").arg(v.id()).arg(v.active() ? tr(" (running)") : QString());
    const QString when = QDateTime::fromMSecsSinceEpoch(v.created_ms()).toString("yyyy-MM-dd HH:mm:ss");
    const QStringList cells = {id, when, qs(v.author()), qs(v.comment()), qs(v.diff()).replace('\n', "; ")};
    for (int c = 0; c < cells.size(); ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      item->setData(Qt::UserRole, static_cast<qlonglong>(v.id()));
      history_->setItem(i, c, item);
    }
  }
}

void PoliciesPage::validateNow() {
  debounce_->stop();
  errors_->clear();
  auto r = client_.validateConfig(source());
  if (!r.ok()) {
    errors_->addItem(qs(r.status().message()));
    return;
  }
  QStringList errors;
  for (const auto& e : r->errors()) errors << qs(e);
  errors_->addItems(errors);
  if (view_ == 0) form_->setErrors(errors);
}

bool PoliciesPage::showDiff() {
  validateNow();
  if (errors_->count() > 0) {
    emit message(tr("Fix the problems first."));
    return false;
  }
  auto d = client_.diffConfig(source());
  if (!d.ok()) {
    emit message(qs(d.status().message()));
    return false;
  }
  QStringList lines;
  for (const auto& l : d->lines()) lines << qs(l);
  diff_->setPlainText(lines.isEmpty() ? tr("No changes against v%1.").arg(d->against_version()) : lines.join('\n'));
  return true;
}

bool PoliciesPage::apply() {
  if (!showDiff()) return false;
  if (diff_->toPlainText().startsWith(tr("No changes"))) {
    emit message(tr("Nothing to apply."));
    return false;
  }
  if (!confirm_(tr("Apply these changes?\n\n%1").arg(diff_->toPlainText()))) return false;
  v1::ApplyConfigRequest req;
  *req.mutable_source() = source();
  req.set_comment(comment_->text().toStdString());
  req.set_base_version(loaded_version_);
  auto r = client_.applyConfig(req);
  if (!r.ok()) {
    emit message(tr("Not applied: %1").arg(qs(r.status().message())));
    return false;
  }
  emit message(tr("Applied: now config v%1.").arg(r->version()));
  emit applied(r->version());
  comment_->clear();
  reload();
  return true;
}

bool PoliciesPage::rollbackSelected() {
  const auto rows = history_->selectionModel()->selectedRows();
  if (rows.isEmpty()) {
    emit message(tr("Select a version in the history first."));
    return false;
  }
  const qlonglong version = history_->item(rows.first().row(), 0)->data(Qt::UserRole).toLongLong();
  if (!confirm_(tr("Roll back to v%1?").arg(version))) return false;
  v1::RollbackRequest req;
  req.set_version(version);
  req.set_comment(comment_->text().toStdString());
  auto r = client_.rollback(req);
  if (!r.ok()) {
    emit message(tr("Rollback failed: %1").arg(qs(r.status().message())));
    return false;
  }
  emit message(tr("Rolled back: now config v%1.").arg(r->version()));
  emit applied(r->version());
  reload();
  return true;
}

}  // namespace spillway::ui
