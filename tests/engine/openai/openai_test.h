// Request validation and the shapes of errors and SSE frames.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class OpenAiTest : public QObject {
  Q_OBJECT
 private slots:
  void routes();
  void parsesChat();
  void parsesCompletions();
  void parsesEmbeddingsAndResponses();
  void passthroughReadsOnlyTheModel();
  void streamErrorsSpeakTheEndpointsDialect();
  void rejectsBadRequests_data();
  void rejectsBadRequests();
  void parserIsReusable();
  void errorBodyShape();
  void tokenizer();
};
