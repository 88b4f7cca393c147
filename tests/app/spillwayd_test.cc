// The spillwayd binary as an operator runs it: --help, --check-config exit
// codes and messages, serving on the port it prints, and a graceful drain on
// SIGTERM that lets an in-flight stream finish.
#include "spillwayd_test.h"

#include <QtTest>

#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <future>
#include <signal.h>

#include "support/json.h"
#include "support/test_http.h"

using namespace spillway::testing;

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
    QRegularExpression re("listening on http://127\\.0\\.0\\.1:(\\d+)");
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
