#include "support/redis_server.h"

#include <QStandardPaths>

#include <chrono>

#include "admission/redis_limiter.h"
#include "support/test_http.h"

namespace spillway::testing {

bool RedisServer::start(uint16_t port) {
  const QString exe = QStandardPaths::findExecutable("redis-server");
  if (exe.isEmpty()) {
    error_ = "redis-server not found (installer/debian-deps.sh installs it)";
    return false;
  }
  port_ = port ? port : closedPort();
  proc_.setProgram(exe);
  proc_.setArguments({"--port", QString::number(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--dir", dir_.path(), "--loglevel", "warning"});
  proc_.start();
  if (!proc_.waitForStarted(10000)) {
    error_ = "redis-server did not start";
    return false;
  }
  admission::RedisLimiter probe({{"127.0.0.1", port_, std::chrono::milliseconds(200)}, "probe:"});
  // Answers once it listens; each failed try waits out the limiter's 1 s retry.
  const bool ok = waitFor([&] { return probe.take({{"x", 1, 1000000, 0}}).has_value(); }, 20s);
  if (!ok) error_ = "redis-server did not answer";
  return ok;
}

void RedisServer::kill() {
  proc_.kill();
  proc_.waitForFinished(10000);
}

}  // namespace spillway::testing
