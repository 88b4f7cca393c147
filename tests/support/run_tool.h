// Runs a real client tool (curl, promtool) with `input` on its stdin:
// its stdout and stderr together, and its exit code (-1 when it did not
// finish within 30 s).
#pragma once

#include <QByteArray>
#include <QString>
#include <QStringList>
#include <string>

namespace spillway::testing {

std::string runTool(const QString& program, const QStringList& args, const QByteArray& input, int* exit_code);

}  // namespace spillway::testing
