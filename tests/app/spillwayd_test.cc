// The spillwayd binary as an operator runs it: --help, --check-config exit
// codes and messages, serving on the port it prints, and a graceful drain on
// SIGTERM that lets an in-flight stream finish.
#include "spillwayd_test.h"

#include <QtTest>

#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <signal.h>
#include <thread>

#include "support/json.h"
#include "support/run_tool.h"
#include "support/spillwayd_process.h"
#include "support/test_http.h"

using namespace spillway::testing;
using namespace std::chrono_literals;

namespace {

struct Daemon {
  QProcess proc;
  uint16_t port = 0;

  bool start(const QStringList& args) {
    proc.setProgram(SPILLWAYD_PATH);
    proc.setArguments(args);
    proc.start();
    if (!proc.waitForStarted(10000)) return false;
    QByteArray out;
    // The banner's line (spillwayd or spillwayd sim), printed once ready; the
    // engine's log says "listening on" earlier.
    QRegularExpression re("^spillwayd(?: sim)?: listening on http://127\\.0\\.0\\.1:(\\d+)",
                          QRegularExpression::MultilineOption);
    while (proc.waitForReadyRead(10000)) {
      out += proc.readAllStandardOutput();
      auto m = re.match(QString::fromUtf8(out));
      if (m.hasMatch()) {
        port = static_cast<uint16_t>(m.captured(1).toUInt());
        return true;
      }
    }
    qWarning() << "spillwayd did not report its port:" << out << proc.readAllStandardError();
    return false;
  }

  ~Daemon() {
    if (proc.state() != QProcess::NotRunning) {
      proc.kill();
      proc.waitForFinished(5000);
    }
  }
};

std::string writeFile(QTemporaryDir& dir, const QString& name, const std::string& text) {
  QFile f(dir.filePath(name));
  f.open(QIODevice::WriteOnly);
  f.write(text.c_str());
  return dir.filePath(name).toStdString();
}

}  // namespace

void SpillwaydTest::helpDocumentsEveryFlag() {
  QProcess p;
  p.start(SPILLWAYD_PATH, {"--help"});
  QVERIFY(p.waitForFinished(10000));
  QCOMPARE(p.exitCode(), 0);
  QString out = p.readAllStandardOutput();
  for (const char* flag : {"--config", "--listen", "--data-dir", "--check-config", "--threads", "--log-level",
                           "--control-listen", "--print-default-config"}) {
    QVERIFY2(out.contains(flag), flag);
  }
  QProcess sim;
  sim.start(SPILLWAYD_PATH, {"sim", "--help"});
  QVERIFY(sim.waitForFinished(10000));
  QCOMPARE(sim.exitCode(), 0);
  const QString sim_out = sim.readAllStandardOutput();
  for (const char* flag : {"--listen", "--profile", "--model", "--threads", "--prefill-base-ms", "--prefill-per-token-us",
                           "--inter-token-ms", "--max-num-seqs", "--max-waiting", "--min-output-tokens",
                           "--max-output-tokens", "--seed", "--prefix-block-tokens", "--prefix-cache-blocks",
                           "--failure-rate", "--failure-kind", "--log-level"}) {
    QVERIFY2(sim_out.contains(flag), flag);
  }
  QProcess bad;
  bad.start(SPILLWAYD_PATH, {"--no-such-flag"});
  QVERIFY(bad.waitForFinished(10000));
  QCOMPARE(bad.exitCode(), 2);
}

void SpillwaydTest::checkConfigReportsEveryErrorWithItsLocation() {
  QTemporaryDir dir;
  auto bad = writeFile(dir, "bad.yaml", "backends:\n  - name: a\n    url: htp://x:1\n    models: [m]\n    wieght: 2\n");
  QProcess p;
  p.start(SPILLWAYD_PATH, {"--check-config", QString::fromStdString(bad)});
  QVERIFY(p.waitForFinished(10000));
  QCOMPARE(p.exitCode(), 1);
  QString err = p.readAllStandardError();
  QVERIFY2(err.contains("bad.yaml:3:10: backends[0].url: unsupported scheme \"htp\""), qPrintable(err));
  QVERIFY2(err.contains("bad.yaml:5:5: backends[0].wieght: unknown field \"wieght\" (did you mean \"weight\"?)"),
           qPrintable(err));

  auto good = writeFile(dir, "good.yaml", "backends:\n  - {name: a, url: \"sim://a\", models: [m]}\n");
  QProcess ok;
  ok.start(SPILLWAYD_PATH, {"--check-config", QString::fromStdString(good)});
  QVERIFY(ok.waitForFinished(10000));
  QCOMPARE(ok.exitCode(), 0);
}

void SpillwaydTest::servesTheEmbeddedDefaults() {
  QTemporaryDir dir;
  Daemon d;
  // Port 0 for the control plane too: nothing in the suite binds a fixed port.
  QVERIFY(d.start({"--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0", "--data-dir", dir.filePath("state")}));
  QVERIFY(QDir(dir.filePath("state")).exists());
  auto models = httpRequest(d.port, "GET", "/v1/models");
  QCOMPARE(models.status, 200);
  QVERIFY(models.body.find("spillway-small") != std::string::npos);
  auto r = postJson(d.port, "/v1/chat/completions",
                    R"({"model":"spillway-small","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})");
  QCOMPARE(r.status, 200);
  QCOMPARE(jsonObject(r.body)["usage"].toObject()["completion_tokens"].toInt(), 5);
}

void SpillwaydTest::sigtermDrainsInFlightRequests() {
  QTemporaryDir dir;
  auto cfg = writeFile(dir, "drain.yaml", R"(server:
  listen: 127.0.0.1:0
  drain_timeout_ms: 20000
backends:
  - name: steady
    url: sim://steady
    models: [m]
    sim: {profile: instant, inter_token_ms: 25, min_output_tokens: 40, max_output_tokens: 40}
)");
  Daemon d;
  QVERIFY(d.start({"--config", QString::fromStdString(cfg), "--control-listen", "none"}));
  auto stream = startStream(d.port, "/v1/chat/completions", R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ::kill(static_cast<pid_t>(d.proc.processId()), SIGTERM);
  auto r = stream.get();
  QVERIFY2(r.complete && r.sawDone(), r.error.c_str());
  QCOMPARE(r.events.size(), size_t{1 + 40 + 1 + 1});
  QVERIFY(d.proc.waitForFinished(20000));
  QCOMPARE(d.proc.exitStatus(), QProcess::NormalExit);
  QCOMPARE(d.proc.exitCode(), 0);
}

void SpillwaydTest::sigintDrainsLikeSigterm() {
  QTemporaryDir dir;
  auto cfg = writeFile(dir, "int.yaml", R"(server:
  listen: 127.0.0.1:0
  drain_timeout_ms: 20000
backends:
  - name: steady
    url: sim://steady
    models: [m]
    sim: {profile: instant, inter_token_ms: 25, min_output_tokens: 20, max_output_tokens: 20}
)");
  Daemon d;
  QVERIFY(d.start({"--config", QString::fromStdString(cfg), "--control-listen", "none"}));
  auto stream = startStream(d.port, "/v1/chat/completions", R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ::kill(static_cast<pid_t>(d.proc.processId()), SIGINT);
  auto r = stream.get();
  QVERIFY2(r.complete && r.sawDone(), r.error.c_str());
  QVERIFY(d.proc.waitForFinished(20000));
  QCOMPARE(d.proc.exitStatus(), QProcess::NormalExit);
  QCOMPARE(d.proc.exitCode(), 0);
  QVERIFY(QString(d.proc.readAllStandardError() + d.proc.readAllStandardOutput()).contains("received SIGINT, draining"));
}

void SpillwaydTest::printedDefaultConfigValidates() {
  QProcess p;
  p.start(SPILLWAYD_PATH, {"--print-default-config"});
  QVERIFY(p.waitForFinished(10000));
  QCOMPARE(p.exitCode(), 0);
  const QByteArray text = p.readAllStandardOutput();
  QVERIFY(text.contains("backends:") && text.contains("balancing:"));
  QTemporaryDir dir;
  auto file = writeFile(dir, "default.yaml", text.toStdString());
  QProcess check;
  check.start(SPILLWAYD_PATH, {"--check-config", QString::fromStdString(file)});
  QVERIFY(check.waitForFinished(10000));
  QVERIFY2(check.exitCode() == 0, check.readAllStandardError().constData());
}

void SpillwaydTest::simSubcommandServesOpenAiApi() {
  Daemon d;
  QVERIFY(d.start({"sim", "--listen", "127.0.0.1:0", "--profile", "instant", "--model", "x"}));
  auto r = postJson(d.port, "/v1/completions", R"({"model":"x","prompt":"p","max_tokens":2})");
  QCOMPARE(r.status, 200);
  QCOMPARE(jsonObject(r.body)["usage"].toObject()["completion_tokens"].toInt(), 2);
  QProcess bad;
  bad.start(SPILLWAYD_PATH, {"sim", "--profile", "warp"});
  QVERIFY(bad.waitForFinished(10000));
  QCOMPARE(bad.exitCode(), 2);
  QVERIFY(QString(bad.readAllStandardError()).contains("unknown simulator profile"));
}

void SpillwaydTest::gpuPlanWorksOffline() {
  // No engine, no control plane, no GPU: the planner and the inventory alone.
  QProcess plan;
  plan.start(SPILLWAYD_PATH, {"gpu", "plan", "--gpu", "A100-40GB", "--demand", "chat:critical:5:0.3", "--demand",
                              "batch:sheddable:5:0.7"});
  QVERIFY(plan.waitForFinished(20000));
  QCOMPARE(plan.exitCode(), 0);
  const QString out = plan.readAllStandardOutput();
  QVERIFY2(out.contains("nvidia-smi mig -i 0 -cgi 19,19,19,19,19,19,19 -C"), qPrintable(out));
  QVERIFY(out.contains("mig-parted config"));
  QProcess none;
  none.start(SPILLWAYD_PATH, {"gpu", "plan", "--demand", "a:standard:5:1"});
  QVERIFY(none.waitForFinished(20000));
  QCOMPARE(none.exitCode(), 2);
  QVERIFY(QString(none.readAllStandardError()).contains("no GPU here that the catalog knows"));
  QProcess list;
  list.start(SPILLWAYD_PATH, {"gpu", "list", "--nvml-library", "/nonexistent/libnvidia-ml.so.1", "--source", "nvml"});
  QVERIFY(list.waitForFinished(20000));
  QCOMPARE(list.exitCode(), 1);  // no GPU
  QVERIFY(QString(list.readAllStandardOutput()).contains("not found (no NVIDIA driver on this machine)"));
}

QTEST_APPLESS_MAIN(SpillwaydTest)

namespace {

// A config file for the reload tests: two simulated backends for model m;
// `weight` and `retry_after` differ between the versions written.
std::string reloadConfig(int retry_after, int weight) {
  return R"(server:
  retry_after_seconds: )" +
         std::to_string(retry_after) + R"(
backends:
  - name: a
    url: sim://a
    models: [m]
    weight: )" + std::to_string(weight) +
         R"(
    sim: {profile: instant, inter_token_ms: 1, min_output_tokens: 4, max_output_tokens: 4}
  - name: b
    url: sim://b
    models: [m]
    sim: {profile: instant, inter_token_ms: 1, min_output_tokens: 4, max_output_tokens: 4}
)";
}

// The value of one sample in a Prometheus text body ("name{labels}"), or -1.
double sample(const std::string& metrics, const std::string& series) {
  const std::string prefix = series + " ";
  size_t at = metrics.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::strtod(metrics.c_str() + at + 1 + prefix.size(), nullptr);
}

double reloadSample(uint16_t port, const std::string& series) {
  return sample(httpRequest(port, "GET", "/metrics").body, series);
}

// Sends chat completions from `threads` clients until stopped; counts
// answers by status.
class Load {
 public:
  Load(uint16_t port, int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, port] {
        while (!stop_.load()) {
          auto r = postJson(port, "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
          std::lock_guard lock(mu_);
          ++by_status_[r.status];
        }
      });
    }
  }
  ~Load() { stop(); }
  std::map<int, int> stop() {
    stop_.store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    std::lock_guard lock(mu_);
    return by_status_;
  }
  int sent() {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& [status, count] : by_status_) n += count;
    return n;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<int, int> by_status_;
  std::vector<std::thread> threads_;
};

QString statusesText(const std::map<int, int>& by_status) {
  QString s;
  for (const auto& [status, count] : by_status) s += QString("%1: %2  ").arg(status).arg(count);
  return s;
}

std::string spillctl(const SpillwaydProcess& d, const QStringList& args) {
  int code = -1;
  return runTool(SPILLCTL_PATH,
                 QStringList{"--addr", QString::fromStdString(d.controlAddress()), "--token-file",
                             d.dataDir() + "/control.token"} +
                     args,
                 {}, &code);
}

}  // namespace

void SpillwaydTest::versionIsPrinted() {
  for (const char* program : {SPILLWAYD_PATH, SPILLCTL_PATH}) {
    QProcess p;
    p.start(program, {"--version"});
    QVERIFY(p.waitForFinished(10000));
    QCOMPARE(p.exitCode(), 0);
    const QString out = p.readAllStandardOutput();
    QVERIFY2(QRegularExpression(R"(^spill(wayd|ctl) \d+\.\d+\.\d+\n$)").match(out).hasMatch(), qPrintable(out));
  }
}

void SpillwaydTest::sighupReloadsUnderLoadWithoutFailures() {
  QTemporaryDir dir;
  const std::string file = writeFile(dir, "spillway.yaml", reloadConfig(1, 1));
  SpillwaydProcess d;
  QVERIFY2(d.start(SPILLWAYD_PATH, {"--config", QString::fromStdString(file)}), qPrintable(d.error()));
  const std::string applied = R"(spillway_config_reloads_total{result="applied"})";
  QCOMPARE(reloadSample(d.port(), applied), 0.0);

  Load load(d.port(), 4);
  QVERIFY(waitFor([&] { return load.sent() >= 20; }, 20s));
  for (int i = 1; i <= 3; ++i) {
    writeFile(dir, "spillway.yaml", reloadConfig(1 + i, 1 + i));
    const int before = load.sent();
    ::kill(static_cast<pid_t>(d.pid()), SIGHUP);
    QVERIFY2(waitFor([&] { return reloadSample(d.port(), applied) == i; }, 20s), qPrintable(d.output()));
    // Traffic went on across the reload.
    QVERIFY(waitFor([&] { return load.sent() >= before + 20; }, 20s));
  }
  // The same file again: validated, nothing to change, no new version.
  ::kill(static_cast<pid_t>(d.pid()), SIGHUP);
  QVERIFY(waitFor([&] { return reloadSample(d.port(), R"(spillway_config_reloads_total{result="unchanged"})") == 1; }, 20s));
  const auto statuses = load.stop();
  QVERIFY2(statuses.size() == 1 && statuses.count(200), qPrintable(statusesText(statuses)));

  // Each reload is a version by actor "file", with what triggered it.
  const std::string history = spillctl(d, {"config", "history", "--json"});
  QCOMPARE(QString::fromStdString(history).count("\"author\": \"file\""), 3);
  QVERIFY2(history.find("SIGHUP: " + file) != std::string::npos, history.c_str());
  // The running config is the last file's.
  QVERIFY(spillctl(d, {"config", "get"}).find("\"retry_after_seconds\": 4") != std::string::npos);
}

void SpillwaydTest::sighupWithABrokenFileChangesNothing() {
  QTemporaryDir dir;
  const std::string file = writeFile(dir, "spillway.yaml", reloadConfig(7, 1));
  SpillwaydProcess d;
  QVERIFY2(d.start(SPILLWAYD_PATH, {"--config", QString::fromStdString(file)}), qPrintable(d.error()));
  const std::string before = spillctl(d, {"config", "get"});
  QVERIFY(before.find("\"retry_after_seconds\": 7") != std::string::npos);

  // Line 3 names an unknown scheme; line 5 an unknown key.
  writeFile(dir, "spillway.yaml", "backends:\n  - name: a\n    url: htp://x\n    models: [m]\n    wieght: 2\n");
  ::kill(static_cast<pid_t>(d.pid()), SIGHUP);
  const std::string invalid = R"(spillway_config_reload_failures_total{reason="invalid"})";
  QVERIFY2(waitFor([&] { return reloadSample(d.port(), invalid) == 1; }, 20s), qPrintable(d.output()));
  QCOMPARE(spillctl(d, {"config", "get"}), before);
  QCOMPARE(reloadSample(d.port(), R"(spillway_config_reloads_total{result="applied"})"), 0.0);
  // Still serving on the old config.
  auto r = postJson(d.port(), "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  QCOMPARE(r.status, 200);
  // Every error in the log, with file:line:column.
  const QString log = d.output();
  QVERIFY2(log.contains(QString::fromStdString(file) + ":3:"), qPrintable(log));
  QVERIFY2(log.contains(QString::fromStdString(file) + ":5:"), qPrintable(log));
  QVERIFY2(log.contains("the running config (v1) is unchanged"), qPrintable(log));
}

void SpillwaydTest::watchConfigAppliesAnEditedFile() {
  QTemporaryDir dir;
  const std::string file = writeFile(dir, "spillway.yaml", reloadConfig(1, 1));
  SpillwaydProcess d;
  QVERIFY2(d.start(SPILLWAYD_PATH, {"--config", QString::fromStdString(file), "--watch-config", "20"}),
           qPrintable(d.error()));
  // A ConfigMap update: the new file appears under another name and is
  // renamed over the old one (a new inode).
  writeFile(dir, "next.yaml", reloadConfig(9, 3));
  QVERIFY(QFile::remove(QString::fromStdString(file)));
  QVERIFY(QFile::rename(dir.filePath("next.yaml"), QString::fromStdString(file)));
  QVERIFY2(waitFor([&] { return reloadSample(d.port(), R"(spillway_config_reloads_total{result="applied"})") == 1; }, 20s),
           qPrintable(d.output()));
  QVERIFY(spillctl(d, {"config", "get"}).find("\"retry_after_seconds\": 9") != std::string::npos);
  QVERIFY(spillctl(d, {"config", "history", "--json"}).find("watch: " + file) != std::string::npos);
}

void SpillwaydTest::readyzSaysDrainingDuringTheDrainDelay() {
  QTemporaryDir dir;
  // A delay far longer than the test: only the second signal ends it.
  auto cfg = writeFile(dir, "ready.yaml", R"(server:
  listen: 127.0.0.1:0
  drain_delay_ms: 600000
backends:
  - name: steady
    url: sim://steady
    models: [m]
    sim: {profile: instant, inter_token_ms: 1, min_output_tokens: 4, max_output_tokens: 4}
)");
  Daemon d;
  QVERIFY(d.start({"--config", QString::fromStdString(cfg), "--control-listen", "none"}));
  QCOMPARE(httpRequest(d.port, "GET", "/readyz").status, 200);
  ::kill(static_cast<pid_t>(d.proc.processId()), SIGTERM);
  QVERIFY(waitFor([&] {
    auto r = httpRequest(d.port, "GET", "/readyz");
    return r.status == 503 && r.body.find(R"("status":"draining")") != std::string::npos;
  }));
  // Not ready, still serving: new connections are accepted and answered.
  auto r = postJson(d.port, "/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  QCOMPARE(r.status, 200);
  QCOMPARE(httpRequest(d.port, "GET", "/healthz").status, 200);
  ::kill(static_cast<pid_t>(d.proc.processId()), SIGTERM);
  QVERIFY(d.proc.waitForFinished(20000));
  QCOMPARE(d.proc.exitCode(), 0);
  QVERIFY(QString(d.proc.readAllStandardOutput()).contains("received SIGTERM again: draining now"));
}
