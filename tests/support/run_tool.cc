#include "support/run_tool.h"

#include <QProcess>

namespace spillway::testing {

std::string runTool(const QString& program, const QStringList& args, const QByteArray& input, int* exit_code) {
  QProcess p;
  p.start(program, args);
  p.write(input);
  p.closeWriteChannel();
  if (!p.waitForFinished(30000)) {
    p.kill();
    *exit_code = -1;
    return "timed out";
  }
  *exit_code = p.exitCode();
  return (p.readAllStandardOutput() + p.readAllStandardError()).toStdString();
}

}  // namespace spillway::testing
