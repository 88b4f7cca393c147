// The attempt loop on its own: no gateway, no engine — a routing table
// built by hand over two simulated backends on loopback, a scripted slot
// source in place of admission, a recording client channel.
#pragma once

#include <QObject>

class AttemptLoopTest : public QObject {
  Q_OBJECT
 private slots:
  void aRefusalIsRetriedOnAnotherBackend();
  void theHeldRefusalIsRelayedWhenNobodyElseCanTakeIt();
  void stagesWrapTheAnswerEarliestFirst();
  void aSinkThatCutsTheAnswerEndsTheRequest();
  void aSlotSourceAnswerEndsTheLoopWithoutAnAttempt();
};
