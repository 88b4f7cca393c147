#include "ui/fleet_page.h"

#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QApplication>
#include <QPointer>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QLabel>
#include <QTableView>
#include <QTableWidget>
#include <QColor>
#include <QDateTime>
#include <QTimer>
#include <QVBoxLayout>
#include <thread>

#include "ui/token_store.h"
#include "ui/text.h"

namespace spillway::ui {

// ---- model -------------------------------------------------------------------

void FleetModel::setEngines(const std::vector<RemoteEngine>& engines) {
  beginResetModel();
  engines_ = engines;
  endResetModel();
}

void FleetModel::setState(const QString& name, const RemoteState& state) {
  states_[name] = state;
  for (int r = 0; r < rowCount(); ++r) {
    if (engines_[static_cast<size_t>(r)].name == name) emit dataChanged(index(r, 0), index(r, kColumnCount - 1));
  }
}

const RemoteState* FleetModel::state(const QString& name) const {
  auto it = states_.find(name);
  return it == states_.end() ? nullptr : &it->second;
}

int FleetModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(engines_.size());
}
int FleetModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : kColumnCount; }

QVariant FleetModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || role != Qt::DisplayRole) return {};
  const auto& e = engines_[static_cast<size_t>(index.row())];
  const RemoteState* s = state(e.name);
  switch (index.column()) {
    case kName: return e.name;
    case kAddress: return qs(e.options.address) + (e.options.tls || !e.options.ca_file.empty() ? " (TLS)" : "");
    case kStatus: return s ? s->detail : tr("checking…");
    case kConfig: return s && s->reachable ? QString("v%1").arg(s->config_version) : QString();
    case kRps: return s && s->reachable ? QString::number(s->rps, 'f', 1) : QString();
    case kErrors: return s && s->reachable ? QString("%1 %").arg(s->error_rate * 100, 0, 'f', 1) : QString();
    case kP99: return s && s->reachable ? QString("%1 ms").arg(s->p99_ms, 0, 'f', 0) : QString();
    default: return {};
  }
}

QVariant FleetModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  static const char* kNames[] = {"Engine", "Address", "Status", "Config", "Req/s", "Errors", "p99"};
  return section >= 0 && section < kColumnCount ? QString(kNames[section]) : QVariant();
}

// ---- page --------------------------------------------------------------------

QString FleetPage::tokenFilePath() {
  return QDir(QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation)).filePath("fleet-tokens.json");
}

FleetPage::FleetPage(QWidget* parent)
    : QWidget(parent),
      model_(new FleetModel(this)),
      view_(new QTableView(this)),
      results_(new QPlainTextEdit(this)),
      fleet_summary_(new QLabel(this)),
      replicas_(new QTableWidget(0, 7, this)) {
  replicas_->setHorizontalHeaderLabels(
      {tr("Replica"), tr("URL"), tr("Control"), tr("Config"), tr("Fleet version"), tr("Last heartbeat"), tr("Note")});
  replicas_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  replicas_->horizontalHeader()->setStretchLastSection(true);
  replicas_->verticalHeader()->hide();
  fleet_summary_->setWordWrap(true);
  fleet_summary_->setText(tr("Fleet: reading…"));
  view_->setModel(model_);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  view_->horizontalHeader()->setStretchLastSection(true);
  view_->verticalHeader()->hide();
  results_->setReadOnly(true);
  results_->setPlaceholderText(tr("Push results appear here, engine by engine"));

  auto* add = new QPushButton(tr("&Add engine…"), this);
  auto* remove = new QPushButton(tr("Remove"), this);
  auto* refresh = new QPushButton(tr("Refresh"), this);
  auto* push_button = new QPushButton(tr("&Push config to selected…"), this);
  push_button->setToolTip(tr("Validate on every selected engine, then apply one by one (the first is the canary)"));
  QObject::connect(refresh, &QPushButton::clicked, this, &FleetPage::refreshNow);
  QObject::connect(add, &QPushButton::clicked, this, [this] {
    QDialog d(this);
    d.setWindowTitle(tr("Add a remote engine"));
    auto* name = new QLineEdit(&d);
    auto* address = new QLineEdit("127.0.0.1:50051", &d);
    auto* token = new QLineEdit(&d);
    token->setEchoMode(QLineEdit::Password);
    auto* ca = new QLineEdit(&d);
    ca->setPlaceholderText(tr("PEM file to trust (enables TLS); empty for plaintext loopback"));
    auto* server_name = new QLineEdit(&d);
    auto* form = new QFormLayout(&d);
    form->addRow(tr("Name"), name);
    form->addRow(tr("Control address"), address);
    form->addRow(tr("Token"), token);
    form->addRow(tr("CA / certificate"), ca);
    form->addRow(tr("Server name"), server_name);
    auto* box = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &d);
    form->addRow(box);
    QObject::connect(box, &QDialogButtonBox::accepted, &d, &QDialog::accept);
    QObject::connect(box, &QDialogButtonBox::rejected, &d, &QDialog::reject);
    if (d.exec() != QDialog::Accepted || name->text().isEmpty()) return;
    RemoteEngine e;
    e.name = name->text();
    e.options.address = address->text().toStdString();
    e.options.token = token->text().toStdString();
    e.options.ca_file = ca->text().toStdString();
    e.options.server_name = server_name->text().toStdString();
    addEngine(e);
  });
  QObject::connect(remove, &QPushButton::clicked, this, [this] {
    for (const auto& idx : view_->selectionModel()->selectedRows()) removeEngine(model_->data(idx, Qt::DisplayRole).toString());
  });
  QObject::connect(push_button, &QPushButton::clicked, this, [this] {
    QStringList names;
    for (const auto& idx : view_->selectionModel()->selectedRows()) names << model_->data(idx, Qt::DisplayRole).toString();
    if (names.isEmpty()) {
      emit message(tr("Select the engines to push to (the first selected is the canary)."));
      return;
    }
    const QString file = QFileDialog::getOpenFileName(this, tr("Config to push"), {}, tr("YAML (*.yaml *.yml *.json)"));
    if (file.isEmpty()) return;
    QFile f(file);
    if (!f.open(QIODevice::ReadOnly)) return;
    const QString yaml = QString::fromUtf8(f.readAll());
    const QString comment = QInputDialog::getText(this, tr("Push"), tr("Why this change"));
    pushSelected(yaml, comment, names);
  });
  auto* open = new QPushButton(tr("&Open console"), this);
  open->setToolTip(tr("A console window on the selected engine: every page, over gRPC"));
  QObject::connect(open, &QPushButton::clicked, this, [this] {
    const auto rows = view_->selectionModel()->selectedRows();
    if (rows.isEmpty()) {
      emit message(tr("Select an engine first."));
      return;
    }
    const QString name = model_->data(rows.first(), Qt::DisplayRole).toString();
    for (const auto& e : engines_) {
      if (e.name == name) emit openRequested(e);
    }
  });
  confirm_ = [this](const QString& q) {
    QMessageBox box(QMessageBox::Question, tr("Push config"), q.section("\n\n", 0, 0),
                    QMessageBox::Yes | QMessageBox::No, this);
    box.setDetailedText(q.section("\n\n", 1));
    return box.exec() == QMessageBox::Yes;
  };

  auto* timer = new QTimer(this);
  timer->setInterval(5000);
  QObject::connect(timer, &QTimer::timeout, this, [this] {
    if (isVisible() && !engines_.empty()) refreshNow();
  });
  timer->start();

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(add);
  buttons->addWidget(remove);
  buttons->addWidget(refresh);
  buttons->addWidget(open);
  buttons->addStretch(1);
  buttons->addWidget(push_button);
  auto* add_replicas = new QPushButton(tr("Add these &replicas"), this);
  add_replicas->setToolTip(tr("List every registered replica above (one token for them all), to refresh and push to"));
  QObject::connect(add_replicas, &QPushButton::clicked, this, [this] {
    if (replicasToAdd("").empty()) {
      emit message(tr("Every registered replica with a control plane is listed already."));
      return;
    }
    bool ok = false;
    const QString token = QInputDialog::getText(this, tr("Add replicas"), tr("Their control token"),
                                                QLineEdit::Password, {}, &ok);
    if (!ok) return;
    for (const auto& e : replicasToAdd(token.toStdString())) addEngine(e);
  });
  auto* fleet_row = new QHBoxLayout;
  fleet_row->addWidget(fleet_summary_, 1);
  fleet_row->addWidget(add_replicas);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(fleet_row);
  layout->addWidget(replicas_, 1);
  layout->addLayout(buttons);
  layout->addWidget(view_, 2);
  layout->addWidget(results_, 1);
  load();
}

void FleetPage::showReplicas(const v1::FleetState& f) {
  fleet_state_ = f;
  if (!f.enabled()) {
    fleet_summary_->setText(tr("Fleet: this engine runs alone (no fleet.redis_address, limits.redis or cache.redis)."));
    replicas_->setRowCount(0);
    return;
  }
  fleet_summary_->setText(
      tr("Fleet: %1 replica(s) share this engine's Redis %2 (%3) · backends and, while Redis is down, limits divided "
         "by %4 (%5) · config from %6, fleet version %7")
          .arg(f.members_size())
          .arg(qs(f.redis_address()), f.redis_up() ? tr("up") : tr("DOWN"))
          .arg(f.replicas())
          .arg(f.counted() ? tr("registry") : tr("fleet.replicas or the last count"))
          .arg(qs(f.config_source()))
          .arg(f.fleet_version()));
  replicas_->setRowCount(f.members_size());
  for (int i = 0; i < f.members_size(); ++i) {
    const auto& m = f.members(i);
    QStringList notes;
    if (m.id() == f.replica_id()) notes << tr("this engine");
    const bool other_version = m.fleet_version() != f.fleet_version();
    if (other_version) notes << tr("other fleet version");
    if (!m.limits_redis_up()) notes << tr("limits local");
    const QStringList cells = {qs(m.id()),
                               qs(m.url()),
                               m.control().empty() ? QString("-") : qs(m.control()),
                               QString("v%1").arg(m.config_version()),
                               QString("v%1").arg(m.fleet_version()),
                               QDateTime::fromMSecsSinceEpoch(m.seen_ms()).toString("HH:mm:ss"),
                               notes.join(", ")};
    for (int c = 0; c < cells.size(); ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      if (other_version || !m.limits_redis_up()) item->setForeground(QColor(0xd9, 0x8a, 0x00));
      replicas_->setItem(i, c, item);
    }
  }
  replicas_->resizeColumnsToContents();
}

std::vector<RemoteEngine> FleetPage::replicasToAdd(const std::string& token) const {
  std::vector<RemoteEngine> out;
  for (const auto& m : fleet_state_.members()) {
    if (m.control().empty()) continue;
    const bool listed = std::any_of(engines_.begin(), engines_.end(), [&](const RemoteEngine& e) {
      return e.options.address == m.control() || e.name == qs(m.id());
    });
    if (listed) continue;
    RemoteEngine e;
    e.name = qs(m.id());
    e.options.address = m.control();
    e.options.token = token;
    out.push_back(std::move(e));
  }
  return out;
}

FleetPage::~FleetPage() {
  // Calls carry 3 s deadlines, so this waits at most about that long.
  for (auto& w : workers_) w.thread.join();
}

template <typename Fn>
void FleetPage::startWorker(Fn fn) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  workers_.push_back({std::thread([fn = std::move(fn), done] {
                        fn();
                        done->store(true);
                      }),
                      done});
}

std::unique_ptr<control::GrpcEngineClient> FleetPage::connect(const RemoteEngine& e) {
  auto opts = e.options;
  opts.timeout = std::chrono::milliseconds(3000);
  auto c = control::GrpcEngineClient::connect(opts);
  return c.ok() ? std::move(*c) : nullptr;
}

void FleetPage::addEngine(const RemoteEngine& engine) {
  // Replaces an engine of the same name; its token is overwritten below.
  std::erase_if(engines_, [&](const RemoteEngine& e) { return e.name == engine.name; });
  engines_.push_back(engine);
  const auto where = TokenStore(tokenFilePath()).save(engine.name, qs(engine.options.token));
  emit message(where == TokenStore::Where::kKeyring
                   ? tr("%1 added; its token is in the keyring.").arg(engine.name)
                   : tr("%1 added; no keyring answered, so its token is in %2 (readable only by you).")
                         .arg(engine.name, tokenFilePath()));
  save();
  model_->setEngines(engines_);
  refreshNow();
}

void FleetPage::removeEngine(const QString& name) {
  auto it = std::remove_if(engines_.begin(), engines_.end(), [&](const RemoteEngine& e) { return e.name == name; });
  if (it == engines_.end()) return;
  engines_.erase(it, engines_.end());
  TokenStore(tokenFilePath()).remove(name);
  save();
  model_->setEngines(engines_);
}

void FleetPage::load() {
  QSettings s;
  TokenStore tokens(tokenFilePath());
  const int n = s.beginReadArray("fleet");
  for (int i = 0; i < n; ++i) {
    s.setArrayIndex(i);
    RemoteEngine e;
    e.name = s.value("name").toString();
    e.options.address = s.value("address").toString().toStdString();
    e.options.ca_file = s.value("ca").toString().toStdString();
    e.options.server_name = s.value("server_name").toString().toStdString();
    e.options.tls = s.value("tls").toBool();
    e.options.token = tokens.load(e.name).toStdString();
    engines_.push_back(e);
  }
  s.endArray();
  model_->setEngines(engines_);
}

void FleetPage::save() const {
  // Addresses and TLS settings; tokens live in the TokenStore.
  QSettings s;
  s.beginWriteArray("fleet", static_cast<int>(engines_.size()));
  for (size_t i = 0; i < engines_.size(); ++i) {
    const auto& e = engines_[i];
    s.setArrayIndex(static_cast<int>(i));
    s.setValue("name", e.name);
    s.setValue("address", qs(e.options.address));
    s.setValue("ca", qs(e.options.ca_file));
    s.setValue("server_name", qs(e.options.server_name));
    s.setValue("tls", e.options.tls);
  }
  s.endArray();
}

void FleetPage::refreshNow() {
  startWorker([self = QPointer<FleetPage>(this), engines = engines_] {
    std::vector<std::pair<QString, RemoteState>> states;
    for (const auto& e : engines) {
      RemoteState st;
      auto c = FleetPage::connect(e);
      auto status = c ? c->status() : absl::UnavailableError("bad address");
      if (!status.ok()) {
        st.detail = tr("unreachable: %1").arg(qs(status.status().message()));
      } else {
        st.reachable = true;
        st.config_version = status->config_version();
        st.detail = tr("%1, %2, backends %3/%4")
                        .arg(qs(status->version()), status->ready() ? tr("ready") : tr("NOT READY"))
                        .arg(status->backends_available())
                        .arg(status->backends_total());
        if (auto snap = c->snapshot(); snap.ok()) {
          st.rps = snap->requests_per_second();
          st.error_rate = snap->error_rate();
          st.p99_ms = snap->latency_p99_seconds() * 1e3;
        }
      }
      states.emplace_back(e.name, st);
    }
    QMetaObject::invokeMethod(
        qApp,
        [self, states] {
          if (!self) return;
          for (const auto& [name, st] : states) self->model_->setState(name, st);
          emit self->refreshed();
        },
        Qt::QueuedConnection);
  });
}

std::vector<FleetPage::PushResult> FleetPage::push(const QString& yaml, const QString& comment, const QStringList& names,
                                                   const PushOptions& options) {
  return pushTo(engines_, yaml, comment, names, options);
}

namespace {
QString describe(const std::vector<FleetPage::PushResult>& results, bool preview) {
  QString text;
  for (const auto& r : results) {
    const QString head = preview       ? QObject::tr("diff against v%1").arg(r.version)
                         : r.applied ? QObject::tr("applied, now v%1").arg(r.version)
                                     : QObject::tr("NOT applied");
    text += QString("%1: %2\n%3\n\n").arg(r.engine, head, r.detail);
  }
  return text;
}
}  // namespace

void FleetPage::pushSelected(const QString& yaml, const QString& comment, const QStringList& names) {
  results_->setPlainText(tr("Validating on %1…").arg(names.join(", ")));
  // Off the UI thread, on a copy of the engine list; results come back to
  // the UI thread, where the page is checked to still exist. First the
  // per-engine diffs, then (confirmed) the apply, canary first.
  startWorker([self = QPointer<FleetPage>(this), engines = engines_, yaml, comment, names] {
    auto preview = pushTo(engines, yaml, comment, names, {.preview = true});
    QMetaObject::invokeMethod(qApp, [self, engines, yaml, comment, names, preview] {
      if (!self) return;
      self->results_->setPlainText(describe(preview, true));
      PushOptions apply;
      for (const auto& r : preview) {
        if (r.detail.startsWith(tr("refused")) || r.detail == tr("no such engine")) {
          emit self->message(tr("Not pushed: %1 refused the config.").arg(r.engine));
          return;
        }
        apply.expected[r.engine] = r.version;
      }
      if (!self->confirm_(tr("Apply to %1, one by one (%2 first), stopping at the first failure?\n\n%3")
                              .arg(names.join(", "), names.first(), describe(preview, true)))) {
        return;
      }
      self->results_->setPlainText(tr("Applying to %1…").arg(names.join(", ")));
      self->startWorker([self, engines, yaml, comment, names, apply] {
        auto results = pushTo(engines, yaml, comment, names, apply);
        QMetaObject::invokeMethod(qApp, [self, results] {
          if (!self) return;
          self->results_->setPlainText(describe(results, false));
          emit self->pushed();
        }, Qt::QueuedConnection);
      });
    }, Qt::QueuedConnection);
  });
}

std::vector<FleetPage::PushResult> FleetPage::pushTo(const std::vector<RemoteEngine>& engines_, const QString& yaml,
                                                     const QString& comment, const QStringList& names,
                                                     const PushOptions& options) {
  std::vector<PushResult> out;
  std::vector<std::pair<RemoteEngine, std::unique_ptr<control::GrpcEngineClient>>> targets;
  for (const auto& n : names) {
    auto it = std::find_if(engines_.begin(), engines_.end(), [&](const RemoteEngine& e) { return e.name == n; });
    if (it == engines_.end()) {
      out.push_back({n, false, tr("no such engine")});
      return out;
    }
    targets.emplace_back(*it, connect(*it));
  }
  v1::ConfigSource source;
  source.set_yaml(yaml.toStdString());
  source.set_file("pushed.yaml");
  // 1. Validate and diff everywhere first: a config any engine refuses goes nowhere.
  std::vector<int64_t> base(targets.size());
  bool all_valid = true;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto& [engine, client] = targets[i];
    PushResult r{engine.name};
    auto diff = client ? client->diffConfig(source) : absl::UnavailableError("bad address");
    if (!diff.ok()) {
      r.detail = tr("refused: %1").arg(qs(diff.status().message()));
      all_valid = false;
    } else {
      base[i] = diff->against_version();
      r.version = base[i];
      QStringList lines;
      for (const auto& l : diff->lines()) lines << qs(l);
      r.detail = lines.isEmpty() ? tr("no changes") : lines.join('\n');
      if (auto it = options.expected.find(engine.name); it != options.expected.end() && it->second != base[i]) {
        r.detail = tr("refused: its config changed since the preview (v%1, now v%2)").arg(it->second).arg(base[i]);
        all_valid = false;
      }
    }
    out.push_back(r);
  }
  if (!all_valid || options.preview) return out;
  // 2. Apply one by one, canary first; stop at the first failure.
  for (size_t i = 0; i < targets.size(); ++i) {
    v1::ApplyConfigRequest req;
    *req.mutable_source() = source;
    req.set_comment(comment.toStdString());
    req.set_base_version(base[i]);
    auto r = targets[i].second->applyConfig(req);
    if (!r.ok()) {
      out[i].detail = tr("apply failed: %1").arg(qs(r.status().message()));
      for (size_t j = i + 1; j < out.size(); ++j) out[j].detail = tr("skipped: an earlier engine failed");
      break;
    }
    out[i].applied = true;
    out[i].version = r->version();
  }
  return out;
}

}  // namespace spillway::ui
