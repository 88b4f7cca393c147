#include "support/spillwayd_process.h"

#include <QFile>
#include <QRegularExpression>

namespace spillway::testing {

SpillwaydProcess::~SpillwaydProcess() {
  if (process_.state() == QProcess::NotRunning) return;
  process_.terminate();
  if (!process_.waitForFinished(20000)) process_.kill();
  process_.waitForFinished(5000);
}

bool SpillwaydProcess::start(const QString& program, const QStringList& extra) {
  process_.setProgram(program);
  process_.setArguments(QStringList{"--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0", "--data-dir",
                                    dataDir()} +
                        extra);
  process_.setProcessChannelMode(QProcess::SeparateChannels);
  process_.start();
  if (!process_.waitForStarted(10000)) {
    error_ = "spillwayd did not start: " + process_.errorString();
    return false;
  }
  // The banner names the front URL, then the control plane. Only the
  // banner's own lines count (the engine's log says "listening on" earlier,
  // before spillwayd has set up its reloader): spillwayd prints them once
  // everything is ready.
  const QRegularExpression front(R"(^spillwayd: listening on http://127\.0\.0\.1:(\d+))",
                                 QRegularExpression::MultilineOption);
  const QRegularExpression control(R"(^spillwayd: control plane on 127\.0\.0\.1:(\d+))",
                                   QRegularExpression::MultilineOption);
  QString out;
  while (!control.match(out).hasMatch() && process_.waitForReadyRead(20000)) {
    out += QString::fromUtf8(process_.readAllStandardOutput());
  }
  output_ = out;
  const auto f = front.match(out);
  const auto c = control.match(out);
  if (!f.hasMatch() || !c.hasMatch()) {
    error_ = "no banner from spillwayd; stdout: " + out + "\nstderr: " + QString::fromUtf8(process_.readAllStandardError());
    return false;
  }
  port_ = static_cast<uint16_t>(f.captured(1).toUInt());
  control_address_ = "127.0.0.1:" + c.captured(1).toStdString();
  QFile token(dataDir() + "/control.token");
  if (!token.open(QIODevice::ReadOnly)) {
    error_ = "no control.token in " + dataDir();
    return false;
  }
  token_ = QString::fromUtf8(token.readAll()).trimmed().toStdString();
  return true;
}

void SpillwaydProcess::killHard() {
  process_.kill();
  process_.waitForFinished(20000);
}

QString SpillwaydProcess::output() {
  process_.waitForReadyRead(0);
  output_ += QString::fromUtf8(process_.readAllStandardOutput());
  output_ += QString::fromUtf8(process_.readAllStandardError());
  return output_;
}

}  // namespace spillway::testing
