// The simulated inference server: timing model, slots and queue, 503 when
// saturated, usage counts, determinism and fault injection — over real
// loopback HTTP.
// The test class is declared here so that moc reads only this header: its
// lexer does not understand raw string literals, which the fixtures use.
#pragma once

#include <QObject>

class SimServerTest : public QObject {
  Q_OBJECT
 private slots:
  void usageMatchesGeneratedText();
  void textIsDeterministicPerSeedAndPrompt();
  void maxTokensCapsTheAnswer();
  void streamFollowsTheTimingModel();
  void prefillGrowsWithThePrompt();
  void answers503WhenSlotsAndQueueAreFull();
  void injectsFailures_data();
  void injectsFailures();
  void resetMidStreamCutsTheConnection();
  void adminEndpoints();
};
