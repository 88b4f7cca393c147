// Who a request is: API keys (by SHA-256) to tenant, class and limits, the
// class a header may only lower, a pool's class as a route rule.
#pragma once

#include <QObject>

class AuthenticateTest : public QObject {
  Q_OBJECT
 private slots:
  void keysResolveTenantAndPriority();
  void poolClassIsARouteRule();
  void objectivesComeFromTheClassAndTightenByHeader();
};
