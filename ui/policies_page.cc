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
#include <QTextBlock>
#include <QTimer>
#include <QVBoxLayout>

#include "ui/yaml_highlighter.h"

namespace spillway::ui {

namespace {
// std::string, std::string_view and absl::string_view (Debian's own type).
template <typename S>
QString qs(const S& s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}
}  // namespace

PoliciesPage::PoliciesPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), editor_(new QPlainTextEdit(this)), errors_(new QListWidget(this)),
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
  connect(editor_, &QPlainTextEdit::textChanged, debounce_, qOverload<>(&QTimer::start));
  connect(debounce_, &QTimer::timeout, this, &PoliciesPage::validateNow);
  connect(errors_, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) {
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
  connect(reload_button, &QPushButton::clicked, this, &PoliciesPage::reload);
  connect(diff, &QPushButton::clicked, this, &PoliciesPage::showDiff);
  connect(apply, &QPushButton::clicked, this, &PoliciesPage::apply);
  connect(rollback, &QPushButton::clicked, this, &PoliciesPage::rollbackSelected);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(comment_, 1);
  buttons->addWidget(reload_button);
  buttons->addWidget(diff);
  buttons->addWidget(apply);
  auto* left = new QWidget(this);
  auto* lv = new QVBoxLayout(left);
  lv->setContentsMargins(0, 0, 0, 0);
  lv->addWidget(new QLabel(tr("Config (YAML; JSON is YAML too)"), left));
  lv->addWidget(editor_, 3);
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
  s.set_yaml(editor_->toPlainText().toStdString());
  s.set_file("editor");
  return s;
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
  editor_->setPlainText(qs(json));
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
  errors_->clear();
  auto r = client_.validateConfig(source());
  if (!r.ok()) {
    errors_->addItem(qs(r.status().message()));
    return;
  }
  for (const auto& e : r->errors()) errors_->addItem(qs(e));
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
