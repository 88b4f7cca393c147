// The official OpenAI Node SDK, unmodified but for base_url, against the
// gateway: the compatibility promise tested with a real client.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class OpenAiSdkTest : public QObject {
  Q_OBJECT
 private slots:
  void officialSdkWorksUnmodified();
};
