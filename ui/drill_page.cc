#include "ui/drill_page.h"

#include <QApplication>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "sim/load_generator.h"
#include "ui/text.h"

namespace spillway::ui {

DrillPage::DrillPage(const QString& default_target, QWidget* parent)
    : QWidget(parent), target_(new QLineEdit(default_target, this)), model_(new QLineEdit("spillway-small", this)),
      shape_(new QComboBox(this)), rate_(new QDoubleSpinBox(this)), seconds_(new QSpinBox(this)),
      file_(new QLineEdit(this)),
      start_(new QPushButton(tr("&Start drill"), this)), stop_(new QPushButton(tr("Sto&p"), this)),
      progress_(new QLabel(this)), report_(new QPlainTextEdit(this)) {
  shape_->addItems({"steady", "burst", "ramp", "scenario file"});
  shape_->setToolTip(tr("steady: the rate throughout; burst: 4x the rate for the middle fifth; ramp: 0 to the rate; "
                        "scenario file: classes and phases from a YAML file (as spillway-bench --scenario)"));
  file_->setPlaceholderText(tr("e.g. tests/bench/scenarios/busy-fleet.yaml"));
  auto* browse = new QPushButton(tr("Browse…"), this);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Scenario"), {}, tr("YAML (*.yaml *.yml)"));
    if (!f.isEmpty()) file_->setText(f);
  });
  auto enable = [this, browse] {
    const bool from_file = shape_->currentText() == "scenario file";
    file_->setEnabled(from_file);
    browse->setEnabled(from_file);
    model_->setEnabled(!from_file);
    rate_->setEnabled(!from_file);
    seconds_->setEnabled(!from_file);
  };
  connect(shape_, &QComboBox::currentIndexChanged, this, enable);
  enable();
  rate_->setRange(1, 100000);
  rate_->setValue(50);
  rate_->setSuffix(tr(" req/s"));
  seconds_->setRange(1, 3600);
  seconds_->setValue(30);
  seconds_->setSuffix(tr(" s"));
  stop_->setEnabled(false);
  report_->setReadOnly(true);
  report_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  report_->setPlaceholderText(tr("The drill's report (throughput, errors by kind, latency percentiles) appears here"));
  connect(start_, &QPushButton::clicked, this, &DrillPage::start);
  connect(stop_, &QPushButton::clicked, this, &DrillPage::stop);

  auto* form = new QFormLayout;
  form->addRow(tr("OpenAI endpoint"), target_);
  form->addRow(tr("Model"), model_);
  form->addRow(tr("Shape"), shape_);
  form->addRow(tr("Rate"), rate_);
  form->addRow(tr("Duration"), seconds_);
  auto* file_row = new QHBoxLayout;
  file_row->addWidget(file_, 1);
  file_row->addWidget(browse);
  form->addRow(tr("Scenario file"), file_row);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(start_);
  buttons->addWidget(stop_);
  buttons->addWidget(progress_, 1);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addLayout(buttons);
  layout->addWidget(report_, 1);
}

DrillPage::~DrillPage() {
  if (cancel_) cancel_->store(true);
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<v1::Scenario> DrillPage::scenario() const {
  if (shape_->currentText() == "scenario file") {
    if (file_->text().isEmpty()) return absl::InvalidArgumentError("choose a scenario file");
    auto loaded = sim::loadScenarioFile(file_->text().toStdString());
    if (!loaded.ok()) return loaded.status();
    loaded->set_target(target_->text().toStdString());  // the page's endpoint wins, as --target does
    return loaded;
  }
  v1::Scenario s;
  s.set_target(target_->text().toStdString());
  auto* c = s.add_classes();
  c->set_name(model_->text().toStdString());
  c->set_model(model_->text().toStdString());
  c->set_max_tokens(32);
  const uint32_t total_ms = static_cast<uint32_t>(seconds_->value()) * 1000;
  const double rate = rate_->value();
  auto phase = [&](const char* name, uint32_t ms, double r, double r_end) {
    auto* p = s.add_phases();
    p->set_name(name);
    p->set_duration_ms(std::max<uint32_t>(ms, 1));
    p->set_rate(r);
    p->set_rate_end(r_end);
  };
  const QString shape = shape_->currentText();
  if (shape == "burst") {
    phase("before", total_ms * 2 / 5, rate, 0);
    phase("burst", total_ms / 5, rate * 4, 0);
    phase("after", total_ms * 2 / 5, rate, 0);
  } else if (shape == "ramp") {
    phase("ramp", total_ms, 1, rate);
  } else {
    phase("steady", total_ms, rate, 0);
  }
  s.set_drain_timeout_ms(10000);
  return s;
}

void DrillPage::start() {
  if (running_) return;
  if (thread_.joinable()) thread_.join();
  auto loaded = this->scenario();
  if (!loaded.ok()) {
    emit message(qs(loaded.status().message()));
    report_->setPlainText(qs(loaded.status().message()));
    return;
  }
  v1::Scenario scenario = std::move(*loaded);
  if (auto st = sim::validateScenario(scenario); !st.ok()) {
    emit message(qs(st.message()));
    report_->setPlainText(qs(st.message()));
    return;
  }
  running_ = true;
  start_->setEnabled(false);
  stop_->setEnabled(true);
  report_->clear();
  progress_->setText(tr("starting…"));
  cancel_ = std::make_shared<std::atomic<bool>>(false);
  // Results come back to the UI thread, where the page is checked to exist.
  thread_ = std::thread([self = QPointer<DrillPage>(this), scenario, cancel = cancel_] {
    auto post = [self](auto fn) {
      QMetaObject::invokeMethod(qApp, [self, fn] {
        if (self) fn(*self);
      }, Qt::QueuedConnection);
    };
    auto report = sim::runLoad(
        scenario,
        [&](double t, uint64_t sent, uint64_t ok, uint64_t failed) {
          post([=](DrillPage& p) {
            p.progress_->setText(tr("%1 s: sent %2, ok %3, failed %4").arg(t, 0, 'f', 0).arg(sent).arg(ok).arg(failed));
          });
        },
        cancel.get());
    const QString text = report.ok() ? QString::fromStdString(sim::formatReport(*report))
                                     : qs(report.status().message());
    post([text](DrillPage& p) {
      p.report_->setPlainText(text);
      p.progress_->setText(tr("done"));
      p.running_ = false;
      p.start_->setEnabled(true);
      p.stop_->setEnabled(false);
      emit p.finished();
    });
  });
}

void DrillPage::stop() {
  if (cancel_) cancel_->store(true);
  progress_->setText(tr("stopping: draining requests in flight…"));
}

}  // namespace spillway::ui
