#include "ui/gpu_page.h"

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

#include "gpu/catalog.h"
#include "ui/page_widgets.h"
#include "ui/text.h"

namespace spillway::ui {

namespace {

constexpr int kGpuHeight = 150;
constexpr int kMargin = 10;

// A class's colour: the same everywhere on the page.
QColor classColor(const google::protobuf::RepeatedPtrField<std::string>& classes) {
  for (const auto& c : classes) {
    if (c == "critical") return QColor(0x1f, 0x77, 0xb4);
  }
  for (const auto& c : classes) {
    if (c == "standard") return QColor(0x2c, 0xa0, 0x2c);
    if (c == "sheddable") return QColor(0xff, 0x7f, 0x0e);
  }
  return QColor(0x7f, 0x7f, 0x7f);
}

QString joined(const google::protobuf::RepeatedPtrField<std::string>& list) {
  QStringList out;
  for (const auto& s : list) out << qs(s);
  return out.join(", ");
}

}  // namespace

GpuView::GpuView(QWidget* parent) : QWidget(parent) { setObjectName("gpu-view"); }

void GpuView::setState(const v1::GpuState& state) {
  const bool resize = state.gpus_size() != state_.gpus_size();
  state_ = state;
  if (resize) updateGeometry();
  update();
}

QSize GpuView::sizeHint() const { return {900, std::max(1, state_.gpus_size()) * (kGpuHeight + kMargin) + kMargin}; }

void GpuView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QPalette pal = palette();
  if (state_.gpus_size() == 0) {
    p.setPen(pal.color(QPalette::PlaceholderText));
    p.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap,
               tr("No GPUs. Declare them under gpu.gpus (Policies), or run on a machine with an NVIDIA driver."));
    return;
  }
  const int label_w = 190;
  const int w = width() - label_w - 2 * kMargin;
  const double slice_w = w / 8.0;
  int y = kMargin;
  for (const auto& g : state_.gpus()) {
    const QRect box(kMargin, y, width() - 2 * kMargin, kGpuHeight);
    p.setPen(pal.color(QPalette::Mid));
    p.setBrush(pal.color(QPalette::Base));
    p.drawRoundedRect(box, 6, 6);
    // The label: which GPU, how busy.
    p.setPen(pal.color(QPalette::Text));
    QString label = tr("GPU %1\n%2\n%3").arg(g.index()).arg(qs(g.model().empty() ? g.name() : g.model()))
                        .arg(g.mig_enabled() ? tr("MIG on") : tr("MIG off"));
    if (g.utilization() >= 0) label += tr("\nutilisation %1 %").arg(100 * g.utilization(), 0, 'f', 0);
    label += tr("\nin flight %1").arg(g.in_flight());
    if (g.temperature_c() >= 0) label += tr("  %1 °C").arg(g.temperature_c(), 0, 'f', 0);
    p.drawText(QRect(box.left() + 8, y + 6, label_w - 12, kGpuHeight - 12), Qt::AlignLeft | Qt::AlignTop, label);
    const int x0 = box.left() + label_w;
    // Compute slices (7) on top, memory slices (8) below: the grid.
    const int top = y + 8, compute_h = 16, mem_top = y + 30, mem_h = kGpuHeight - 38;
    uint32_t used_compute = 0;
    for (const auto& i : g.instances()) used_compute += i.compute_slices();
    const double compute_w = 8 * slice_w / 7.0;
    for (int c = 0; c < 7; ++c) {
      const QRectF cell(x0 + c * compute_w + 1, top, compute_w - 2, compute_h);
      p.setPen(pal.color(QPalette::Mid));
      p.setBrush(c < static_cast<int>(used_compute) ? pal.color(QPalette::Highlight).lighter(140)
                                                    : pal.color(QPalette::AlternateBase));
      p.drawRect(cell);
    }
    p.setPen(pal.color(QPalette::Text));
    p.drawText(QRectF(x0, top, 8 * slice_w, compute_h), Qt::AlignCenter,
               tr("compute slices: %1 of 7 in instances").arg(used_compute));
    for (int m = 0; m < 8; ++m) {
      p.setPen(QPen(pal.color(QPalette::Mid), 1, Qt::DashLine));
      p.setBrush(Qt::NoBrush);
      p.drawRect(QRectF(x0 + m * slice_w + 1, mem_top, slice_w - 2, mem_h));
    }
    // Instances: blocks over their memory slices (placed in order where the
    // driver did not say where).
    uint32_t next_free = 0;
    const bool whole = g.instances_size() == 0;
    for (int k = 0; k < (whole ? 1 : g.instances_size()); ++k) {
      const v1::GpuInstanceInfo* inst = whole ? nullptr : &g.instances(k);
      uint32_t start = 0, slices = 8;
      if (inst) {
        slices = std::max(1u, inst->memory_slices());
        start = inst->start() < 8 ? inst->start() : next_free;
        next_free = start + slices;
      }
      const QRectF r(x0 + start * slice_w + 3, mem_top + 3, slices * slice_w - 6, mem_h - 6);
      const QColor color = inst ? classColor(inst->classes()) : QColor(0x7f, 0x7f, 0x7f);
      p.setPen(color.darker(130));
      p.setBrush(color.lighter(165));
      p.drawRoundedRect(r, 4, 4);
      // Load: a bar along the bottom, in flight against capacity.
      const double util = inst ? inst->utilization() : g.utilization();
      if (util > 0) {
        p.setPen(Qt::NoPen);
        p.setBrush(color);
        p.drawRect(QRectF(r.left() + 2, r.bottom() - 8, (r.width() - 4) * std::min(1.0, util), 6));
      }
      p.setPen(QColor(0x20, 0x20, 0x20));
      QString text;
      if (inst) {
        text = tr("%1\n%2\n%3\n%4/%5 in flight")
                   .arg(qs(inst->profile()))
                   .arg(inst->backends_size() ? joined(inst->backends()) : tr("(no backend)"))
                   .arg(inst->classes_size() ? joined(inst->classes()) : tr("any class"))
                   .arg(inst->in_flight())
                   .arg(inst->capacity() ? QString::number(inst->capacity()) : QString("?"));
        if (inst->queued() > 0) text += tr("\n%1 queued").arg(inst->queued());
      } else {
        text = tr("whole GPU\n%1").arg(g.backends_size() ? joined(g.backends()) : tr("(no backend)"));
      }
      QFont f = font();
      f.setPointSizeF(f.pointSizeF() * (slices == 1 ? 0.8 : 0.9));
      p.setFont(f);
      p.drawText(r.adjusted(4, 2, -4, -10), Qt::AlignCenter | Qt::TextWordWrap, text);
      p.setFont(font());
    }
    y += kGpuHeight + kMargin;
  }
}

PlannerDialog::PlannerDialog(control::EngineClient& client, QWidget* parent)
    : QDialog(parent), client_(client), model_(new QComboBox(this)), count_(new QSpinBox(this)),
      demands_(new QTableWidget(0, 4, this)), result_(new QPlainTextEdit(this)), copy_(new QPushButton(tr("Copy commands"), this)) {
  setWindowTitle(tr("Plan a MIG layout"));
  setObjectName("gpu-planner");
  auto* v = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  model_->addItem(tr("the engine's GPUs"), QString());
  for (const auto& m : gpu::catalog()) model_->addItem(qs(m.name), qs(m.name));
  model_->setCurrentIndex(model_->findData(QString("A100-80GB")));  // the article's
  count_->setRange(1, 8);
  top->addWidget(new QLabel(tr("GPUs:"), this));
  top->addWidget(model_);
  top->addWidget(new QLabel(tr("×"), this));
  top->addWidget(count_);
  top->addStretch(1);
  v->addLayout(top);
  v->addWidget(new QLabel(tr("<b>Demand</b> — one row per model and class: memory one replica needs, share of the traffic"),
                          this));
  demands_->setHorizontalHeaderLabels({tr("Name"), tr("Class"), tr("Memory (GB)"), tr("Share")});
  demands_->horizontalHeader()->setStretchLastSection(true);
  demands_->setObjectName("planner-demands");
  v->addWidget(demands_);
  auto* rows = new QHBoxLayout;
  auto* add = new QPushButton(tr("Add row"), this);
  auto* remove = new QPushButton(tr("Remove row"), this);
  auto* go = new QPushButton(tr("Plan"), this);
  go->setDefault(true);
  go->setObjectName("planner-plan");
  rows->addWidget(add);
  rows->addWidget(remove);
  rows->addStretch(1);
  rows->addWidget(go);
  v->addLayout(rows);
  result_->setReadOnly(true);
  result_->setObjectName("planner-result");
  result_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  result_->setPlaceholderText(tr("Layouts appear here, best first, with the nvidia-smi commands that create them. "
                                 "Nothing is applied: an operator runs the commands."));
  v->addWidget(result_, 1);
  auto* bottom = new QHBoxLayout;
  copy_->setEnabled(false);
  bottom->addStretch(1);
  bottom->addWidget(copy_);
  auto* close = new QPushButton(tr("Close"), this);
  bottom->addWidget(close);
  v->addLayout(bottom);
  connect(add, &QPushButton::clicked, this, [this] { addDemand(tr("model"), "standard", 10, 0.5); });
  connect(remove, &QPushButton::clicked, this, [this] {
    if (demands_->currentRow() >= 0) demands_->removeRow(demands_->currentRow());
  });
  connect(go, &QPushButton::clicked, this, &PlannerDialog::plan);
  connect(copy_, &QPushButton::clicked, this, &PlannerDialog::copyCommands);
  connect(close, &QPushButton::clicked, this, &QDialog::accept);
  // The article's case to start from.
  addDemand("chat", "critical", 10, 0.3);
  addDemand("batch", "sheddable", 10, 0.7);
  resize(860, 640);
}

void PlannerDialog::addDemand(const QString& name, const QString& priority, double gb, double share) {
  const int row = demands_->rowCount();
  demands_->insertRow(row);
  demands_->setItem(row, 0, new QTableWidgetItem(name));
  auto* cls = new QComboBox(demands_);
  cls->addItems({"critical", "standard", "sheddable"});
  cls->setCurrentText(priority);
  demands_->setCellWidget(row, 1, cls);
  auto* mem = new QDoubleSpinBox(demands_);
  mem->setRange(0, 1000);
  mem->setValue(gb);
  demands_->setCellWidget(row, 2, mem);
  auto* sh = new QDoubleSpinBox(demands_);
  sh->setRange(0.01, 100);
  sh->setSingleStep(0.05);
  sh->setValue(share);
  demands_->setCellWidget(row, 3, sh);
}

void PlannerDialog::plan() {
  v1::PlanLayoutRequest r;
  if (!model_->currentData().toString().isEmpty()) {
    auto* g = r.add_gpus();
    g->set_model(model_->currentData().toString().toStdString());
    g->set_count(static_cast<uint32_t>(count_->value()));
  }
  for (int row = 0; row < demands_->rowCount(); ++row) {
    auto* d = r.add_demands();
    d->set_name(demands_->item(row, 0) ? demands_->item(row, 0)->text().toStdString() : "");
    d->set_priority(static_cast<QComboBox*>(demands_->cellWidget(row, 1))->currentText().toStdString());
    d->set_memory_gb(static_cast<QDoubleSpinBox*>(demands_->cellWidget(row, 2))->value());
    d->set_share(static_cast<QDoubleSpinBox*>(demands_->cellWidget(row, 3))->value());
  }
  auto planned = client_.planLayout(r);
  if (!planned.ok()) {
    result_->setPlainText(tr("Cannot plan: %1").arg(qs(planned.status().message())));
    commands_.clear();
    copy_->setEnabled(false);
    return;
  }
  result_->setPlainText(qs(planned->text()));
  QStringList lines;
  if (planned->layouts_size() > 0) {
    for (const auto& c : planned->layouts(0).commands()) lines << qs(c);
  }
  commands_ = lines.join('\n');
  copy_->setEnabled(!commands_.isEmpty());
}

void PlannerDialog::copyCommands() { QApplication::clipboard()->setText(commands_); }

QString PlannerDialog::resultText() const { return result_->toPlainText(); }

GpuPage::GpuPage(control::EngineClient& client, QWidget* parent)
    : QWidget(parent), client_(client), summary_(new QLabel(this)), view_(new GpuView(this)) {
  auto* v = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  summary_->setObjectName("gpu-summary");
  summary_->setWordWrap(true);
  top->addWidget(summary_, 1);
  auto* plan = new QPushButton(tr("Plan layout…"), this);
  plan->setObjectName("gpu-plan");
  plan->setToolTip(tr("Propose MIG layouts for a demand mix; prints the nvidia-smi commands (never applies them)"));
  connect(plan, &QPushButton::clicked, this, &GpuPage::openPlanner);
  top->addWidget(plan);
  v->addLayout(top);
  scroll_ = new QScrollArea(this);
  scroll_->setWidgetResizable(true);
  scroll_->setWidget(view_);
  scroll_->setMinimumHeight(kGpuHeight + 2 * kMargin + 4);
  v->addWidget(scroll_);
  v->addWidget(new QLabel(tr("<b>Workers</b> — inference servers launched per instance (gpu.workers)"), this));
  workers_ = liveTable({tr("Backend"), tr("Instance"), tr("State"), tr("PID"), tr("Port"), tr("Restarts"), tr("Last error")},
                       this);
  workers_->setObjectName("gpu-workers");
  for (int c = 0; c < 6; ++c) workers_->horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
  v->addWidget(workers_, 1);
}

void GpuPage::showSnapshot(const v1::MetricsSnapshot& snapshot) {
  const v1::GpuState& g = snapshot.gpu();
  view_->setState(g);
  // The picture takes what its GPUs need (up to three), the workers the rest.
  scroll_->setMaximumHeight(std::min(view_->sizeHint().height(), 3 * (kGpuHeight + kMargin) + kMargin) + 4);
  int instances = 0;
  for (const auto& gpu : g.gpus()) instances += gpu.instances_size();
  QString text = tr("<b>%1 GPU(s)</b>, %2 MIG instance(s) — inventory: %3")
                     .arg(g.gpus_size())
                     .arg(instances)
                     .arg(qs(g.source().empty() ? "none" : g.source()));
  if (!g.detail().empty()) text += tr(" (%1)").arg(qs(g.detail()).toHtmlEscaped());
  summary_->setText(text);
  workers_->setRowCount(g.workers_size());
  for (int i = 0; i < g.workers_size(); ++i) {
    const auto& w = g.workers(i);
    setRow(workers_, i,
           {qs(w.backend()), qs(w.instance()), qs(w.state()), w.pid() ? QString::number(w.pid()) : QString("-"),
            QString::number(w.port()), QString::number(w.restarts()), qs(w.last_error())});
  }
}

QString GpuPage::summaryText() const { return summary_->text(); }

PlannerDialog* GpuPage::planner() {
  if (!planner_) planner_ = new PlannerDialog(client_, this);
  return planner_;
}

void GpuPage::openPlanner() {
  planner()->show();
  planner()->raise();
}

}  // namespace spillway::ui
