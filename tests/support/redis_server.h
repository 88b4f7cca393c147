// A redis-server of the test's own on a free loopback port, no persistence
// (installed by installer/debian-deps.sh); killed when it goes out of scope.
#pragma once

#include <QProcess>
#include <QString>
#include <QTemporaryDir>

#include <cstdint>

namespace spillway::testing {

class RedisServer {
 public:
  // Starts it (on `port`, or a free one) and waits until it answers.
  bool start(uint16_t port = 0);
  void kill();
  ~RedisServer() { kill(); }
  uint16_t port() const { return port_; }
  const QString& error() const { return error_; }

 private:
  QTemporaryDir dir_;
  QProcess proc_;
  uint16_t port_ = 0;
  QString error_;
};

}  // namespace spillway::testing
