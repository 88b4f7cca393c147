// Shared rate limits against a real redis-server the test starts on
// loopback (installed by installer/debian-deps.sh): two engines pointed at
// it enforce one limit together, not two; when Redis is killed they keep
// answering with local limits (never a 5xx), report it, and return to Redis
// once it is back.
#pragma once

#include <QObject>

class SharedLimitsTest : public QObject {
  Q_OBJECT
 private slots:
  void twoEnginesShareOneLimit();
  void fallsBackWhenRedisDiesAndReturns();
  void usageIsReconciledInRedis();
};
