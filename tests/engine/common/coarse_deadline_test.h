// Coarse deadlines: a passed deadline cancels its socket's pending
// operation, a disarmed or re-armed one does not, and the sweeper's tick
// stops when nothing is armed.
#pragma once

#include <QObject>

class CoarseDeadlineTest : public QObject {
  Q_OBJECT
 private slots:
  void passedDeadlineCancelsThePendingRead();
  void disarmedOrPushedBackDeadlineLeavesTheReadAlone();
  void destroyedDeadlineLeavesTheList();
};
