// A real spillwayd for tests: started on kernel-chosen loopback ports with
// its state in a temp dir, read back (front port, control address, the
// generated operator token), and stopped with SIGTERM on destruction.
#pragma once

#include <QProcess>
#include <QString>
#include <QTemporaryDir>
#include <string>

namespace spillway::testing {

class SpillwaydProcess {
 public:
  ~SpillwaydProcess();
  // Starts spillwayd (SPILLWAYD_PATH) on the embedded default config plus
  // `extra` arguments; false (with `error()`) if it does not come up in 20 s.
  bool start(const QString& program, const QStringList& extra = {});
  // Keeps its state in `dir` instead of a temp dir of its own (a restart
  // on the same store). Call before start().
  void useDataDir(const QString& dir) { data_dir_ = dir; }
  // SIGKILL, and waits until it is gone (a crash, for tests).
  void killHard();
  const QString& error() const { return error_; }

  uint16_t port() const { return port_; }
  qint64 pid() const { return process_.processId(); }
  const std::string& controlAddress() const { return control_address_; }
  const std::string& token() const { return token_; }
  QString dataDir() const { return data_dir_.isEmpty() ? dir_.path() : data_dir_; }
  // Everything the process has written so far (stdout and stderr: the log).
  QString output();

 private:
  QTemporaryDir dir_;
  QString data_dir_;
  QProcess process_;
  QString error_;
  uint16_t port_ = 0;
  std::string control_address_;
  std::string token_;
  QString output_;
};

}  // namespace spillway::testing
