// JSON in tests goes through Qt's parser, independent of the simdjson code
// under test.
#pragma once

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <string>

namespace spillway::testing {

inline QJsonObject jsonObject(const std::string& text) {
  return QJsonDocument::fromJson(QByteArray::fromStdString(text)).object();
}

inline std::string str(const QJsonValue& v) { return v.toString().toStdString(); }

}  // namespace spillway::testing
