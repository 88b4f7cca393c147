#include "gpu_engine_test.h"

#include <QtTest>

#include <QFile>
#include <QStandardPaths>
#include <QTemporaryDir>

#include <signal.h>

#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/sha256.h"
#include "config/config_loader.h"
#include "control/local_client.h"
#include "engine.h"
#include "gpu/launcher.h"
#include "support/run_tool.h"
#include "support/test_config.h"
#include "support/test_http.h"

using namespace spillway;
using namespace spillway::testing;
using namespace std::chrono_literals;

namespace {

std::string workerCommand() {
  return std::string(SPILLWAYD_PATH) + " sim --listen 127.0.0.1:{port} --model {model} --profile instant --threads 1";
}

std::string backendOf(uint16_t port, const std::string& body, const Headers& headers) {
  Headers h{{"Content-Type", "application/json"}};
  h.insert(h.end(), headers.begin(), headers.end());
  HttpResult r = httpRequest(port, "POST", "/v1/chat/completions", body, h);
  if (r.status != 200) return "status " + std::to_string(r.status) + ": " + r.body;
  return r.headers["x-spillway-backend"];
}

std::optional<gpu::WorkerState> worker(const gpu::GpuStatus& s, const std::string& name) {
  for (const auto& w : s.workers) {
    if (w.name == name) return w;
  }
  return std::nullopt;
}

bool healthy(const Engine& engine, const std::string& name) {
  const auto w = worker(engine.gpus(), name);
  return w && w->state == "healthy";
}

std::unique_ptr<Engine> startEngine(const std::string& yaml, EngineOptions options = {"", "test", false}) {
  auto started = Engine::start(configFromYaml(yaml), std::move(options));
  if (!started.ok()) qFatal("engine start failed: %s", std::string(started.status().message()).c_str());
  return std::move(*started);
}

}  // namespace

void GpuEngineTest::workersServeTheirInstancesAndClassesStayOnTheirSlices() {
  const std::string yaml = std::string(R"(
server: {listen: "127.0.0.1:0", threads: 2}
limits:
  keys:
    - {name: ops, sha256: )") + common::sha256Hex("crit-token") + R"(, priority: critical}
backends:
  - {name: other, url: "sim://other", models: [other], sim: {profile: instant}}
gpu:
  inventory: declared
  gpus:
    - model: A100-80GB
      mig: [3g.40gb, 1g.10gb, 1g.10gb, 1g.10gb]
  placement:
    critical: [3g.40gb]
    sheddable: [1g.10gb]
    long_max_tokens: 500
    long: [MIG-declared-0-3]
  workers:
    - name: w
      command: ")" + workerCommand() + R"("
      models: [m]
      health_path: /healthz
      start_timeout_ms: 30000
      restart_backoff_ms: 100
)";
  auto engine = startEngine(yaml);
  const std::vector<std::string> names = {"w-g0-0", "w-g0-1", "w-g0-2", "w-g0-3"};
  QVERIFY(waitFor(
      [&] {
        const auto s = engine->gpus();
        if (s.workers.size() != names.size()) return false;
        for (const auto& w : s.workers) {
          if (w.state != "healthy") return false;
        }
        return true;
      },
      30s));
  // The engine's view: one GPU, four instances, each with its worker's backend.
  gpu::GpuStatus status = engine->gpus();
  QCOMPARE(status.source, std::string("declared"));
  QCOMPARE(status.gpus.size(), size_t(1));
  QCOMPARE(status.gpus[0].instances.size(), size_t(4));
  QCOMPARE(status.gpus[0].instances[0].mig.profile, std::string("3g.40gb"));
  QCOMPARE(status.gpus[0].instances[0].backends, std::vector<std::string>{"w-g0-0"});
  QCOMPARE(status.gpus[0].instances[0].classes, std::vector<std::string>{"critical"});
  QCOMPARE(status.gpus[0].instances[3].classes, (std::vector<std::string>{"long", "sheddable"}));
  QCOMPARE(status.gpus[0].instances[3].mig.start, 6u);

  const uint16_t port = engine->port();
  const std::string short_body = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8})";
  const std::string long_body = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":600})";
  const Headers critical{{"Authorization", "Bearer crit-token"}};
  const Headers sheddable{{"x-spillway-priority", "sheddable"}};
  std::set<std::string> seen_critical, seen_sheddable, seen_long, seen_standard;
  for (int i = 0; i < 24; ++i) {
    seen_critical.insert(backendOf(port, short_body, critical));
    seen_sheddable.insert(backendOf(port, short_body, sheddable));
    seen_long.insert(backendOf(port, long_body, sheddable));
    seen_long.insert(backendOf(port, long_body, critical));
    seen_standard.insert(backendOf(port, short_body, {}));
  }
  QCOMPARE(seen_critical, std::set<std::string>{"w-g0-0"});
  QCOMPARE(seen_sheddable, (std::set<std::string>{"w-g0-1", "w-g0-2", "w-g0-3"}));
  QCOMPARE(seen_long, std::set<std::string>{"w-g0-3"});
  QVERIFY2(seen_standard.size() >= 2, "standard has no placement: any instance");  // least_outstanding spreads
  for (const auto& b : seen_standard) QVERIFY2(b.rfind("w-g0-", 0) == 0, b.c_str());

  // Metrics per instance; the planner over the engine's inventory.
  const std::string metrics = engine->metricsText();
  QVERIFY(metrics.find("spillway_gpu_instance_in_flight{gpu=\"0\",instance=\"MIG-declared-0-0\",profile=\"3g.40gb\"}") !=
          std::string::npos);
  QVERIFY(metrics.find("spillway_gpu_workers{state=\"healthy\"} 4") != std::string::npos);
  control::LocalEngineClient client(*engine, "test");
  v1::PlanLayoutRequest plan;
  auto* d = plan.add_demands();
  d->set_name("chat");
  d->set_priority("critical");
  d->set_memory_gb(10);
  d->set_share(0.3);
  d = plan.add_demands();
  d->set_name("batch");
  d->set_priority("sheddable");
  d->set_memory_gb(10);
  d->set_share(0.7);
  auto planned = client.planLayout(plan);
  QVERIFY2(planned.ok(), std::string(planned.status().message()).c_str());
  QCOMPARE(planned->layouts(0).commands(0), std::string("nvidia-smi mig -i 0 -cgi 19,19,19,19,19,19,19 -C"));
  auto listed = client.listGpus();
  QVERIFY(listed.ok());
  QCOMPARE(listed->gpus(0).instances(0).backends(0), std::string("w-g0-0"));
  QCOMPARE(listed->workers_size(), 4);

  // A worker killed from outside comes back.
  const pid_t victim = worker(engine->gpus(), "w-g0-1")->pid;
  QVERIFY(victim > 0);
  ::kill(victim, SIGKILL);
  QVERIFY(waitFor(
      [&] {
        const auto w = worker(engine->gpus(), "w-g0-1");
        return w && w->restarts == 1 && w->state == "healthy" && w->pid != victim;
      },
      30s));
  const auto back = worker(engine->gpus(), "w-g0-1");
  QVERIFY2(back->last_error.empty(), back->last_error.c_str());

  // Dropping the workers from the config stops them and their backends go.
  const pid_t gone = worker(engine->gpus(), "w-g0-2")->pid;
  v1::Config next = engine->config();
  next.mutable_gpu()->clear_workers();
  next.mutable_gpu()->clear_placement();
  auto applied = engine->applyConfig(next, {});
  QVERIFY2(applied.ok(), std::string(applied.status().message()).c_str());
  // Out of routing at once; stopped as soon as nothing is in flight on them.
  QVERIFY(waitFor([&] { return engine->gpus().workers.empty(); }, 30s));
  QVERIFY(waitFor([&] { return ::kill(gone, 0) == -1; }, 30s));  // stopped and reaped: no such process
  for (const auto& b : engine->backends()) QVERIFY2(b.name.rfind("w-", 0) != 0, b.name.c_str());
  QCOMPARE(httpRequest(port, "POST", "/v1/chat/completions", short_body, {{"Content-Type", "application/json"}}).status,
           404);
}

void GpuEngineTest::aFailedApplyPutsTheRunningWorkersBack() {
  const std::string yaml = R"(
server: {listen: "127.0.0.1:0", threads: 1}
gpu:
  inventory: declared
  gpus: [{model: H100-80GB}]
  workers:
    - {name: w, command: ")" + workerCommand() + R"(", models: [m], health_path: /healthz}
)";
  auto engine = startEngine(yaml);
  QVERIFY(waitFor([&] { return healthy(*engine, "w-g0"); }, 30s));
  // A new worker group, and a listen address another socket holds: the
  // apply fails after the workers were changed, and puts them back.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor taken(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  v1::Config next = engine->config();
  next.mutable_gpu()->mutable_workers(0)->set_name("v");
  next.mutable_server()->set_listen("127.0.0.1:" + std::to_string(taken.local_endpoint().port()));
  auto applied = engine->applyConfig(next, {});
  QVERIFY(!applied.ok());
  QCOMPARE(applied.status().code(), absl::StatusCode::kUnavailable);
  const auto workers = engine->gpus().workers;
  QCOMPARE(workers.size(), size_t(1));
  QCOMPARE(workers[0].name, std::string("w-g0"));
  QVERIFY(waitFor([&] { return healthy(*engine, "w-g0"); }, 30s));
  QCOMPARE(backendOf(engine->port(), R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":2})", {}),
           std::string("w-g0"));
}

void GpuEngineTest::droppedWorkersFinishTheirRequestsFirst() {
  const std::string yaml = R"(
server: {listen: "127.0.0.1:0", threads: 1}
backends:
  - {name: other, url: "sim://other", models: [other], sim: {profile: instant}}
gpu:
  inventory: declared
  gpus: [{model: H200-141GB}]
  workers:
    - name: slow
      command: ")" + std::string(SPILLWAYD_PATH) +
                           R"( sim --listen 127.0.0.1:{port} --model m --profile instant --threads 1 --inter-token-ms 50 --min-output-tokens 60 --max-output-tokens 60"
      models: [m]
      health_path: /healthz
)";
  auto engine = startEngine(yaml);
  QVERIFY(waitFor([&] { return healthy(*engine, "slow-g0"); }, 30s));
  // A 3 s stream on the worker; the config drops the worker meanwhile. Had
  // the worker been stopped at the apply, the stream would break.
  auto stream = startStream(engine->port(), "/v1/chat/completions",
                            R"({"model":"m","stream":true,"max_tokens":60,"messages":[{"role":"user","content":"x"}]})");
  QVERIFY(waitFor([&] {
    for (const auto& b : engine->backends()) {
      if (b.name == "slow-g0" && b.in_flight > 0) return true;
    }
    return false;
  }));
  v1::Config next = engine->config();
  next.mutable_gpu()->clear_workers();
  auto applied = engine->applyConfig(next, {});
  QVERIFY2(applied.ok(), std::string(applied.status().message()).c_str());
  const StreamResult r = stream.get();
  QCOMPARE(r.status, 200);
  QVERIFY2(r.sawDone() && r.complete, r.error.c_str());
  QCOMPARE(r.headers.at("x-spillway-backend"), std::string("slow-g0"));
  QVERIFY(waitFor([&] { return engine->gpus().workers.empty(); }, 30s));
}

void GpuEngineTest::nvmlInventoryReachesTheViewAndMetrics() {
  // The engine reading "NVML" — the fake library the tests build — with a
  // backend bound to one of its MIG devices.
  qputenv("FAKE_NVML_MODE", "a100_mig");
  EngineOptions options{"", "test", false};
  options.nvml_library = FAKE_NVML_PATH;
  auto engine = startEngine(R"(
server: {listen: "127.0.0.1:0", threads: 1}
backends:
  - {name: small, url: "sim://small", models: [m], gpu: MIG-fake-1, sim: {profile: instant}}
gpu: {inventory: nvml, placement: {sheddable: [1g.10gb]}}
)",
                            options);
  const gpu::GpuStatus s = engine->gpus();
  QCOMPARE(s.source, std::string("nvml"));
  QCOMPARE(s.detail, std::string("driver 550.54.15"));
  QCOMPARE(s.gpus.size(), size_t(1));
  QCOMPARE(s.gpus[0].device.model, std::string("A100-80GB"));
  QCOMPARE(s.gpus[0].device.utilization, 0.37);  // the driver's, not the slots estimate
  QCOMPARE(s.gpus[0].instances.size(), size_t(3));
  QCOMPARE(s.gpus[0].instances[1].mig.uuid, std::string("MIG-fake-1"));
  QCOMPARE(s.gpus[0].instances[1].backends, std::vector<std::string>{"small"});
  QCOMPARE(s.gpus[0].instances[1].classes, std::vector<std::string>{"sheddable"});
  const std::string metrics = engine->metricsText();
  for (const char* line : {"spillway_gpu_utilization_ratio{gpu=\"0\",model=\"A100-80GB\"} 0.37",
                           "spillway_gpu_temperature_celsius{gpu=\"0\",model=\"A100-80GB\"} 41",
                           "spillway_gpu_power_watts{gpu=\"0\",model=\"A100-80GB\"} 87.5",
                           "spillway_gpu_memory_used_bytes{gpu=\"0\",model=\"A100-80GB\"} 1073741824"}) {
    QVERIFY2(metrics.find(line) != std::string::npos, line);
  }
  const QString promtool = QStandardPaths::findExecutable("promtool");
  QVERIFY2(!promtool.isEmpty(), "promtool is installed by installer/debian-deps.sh");
  int code = 0;
  const std::string checked = runTool(promtool, {"check", "metrics"}, QByteArray::fromStdString(metrics), &code);
  QVERIFY2(code == 0, checked.c_str());
  // The snapshot's figure feeds the console's GPU alert rule.
  control::LocalEngineClient client(*engine, "test");
  auto snap = client.snapshot();
  QVERIFY(snap.ok());
  double figure = -1;
  for (const auto& f : snap->figures()) {
    if (f.key() == "gpu_utilisation") figure = f.value();
  }
  QCOMPARE(figure, 0.37);
  // inventory: auto without a driver falls back to the declared GPUs, and says why.
  EngineOptions none{"", "test", false};
  none.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  auto declared = startEngine(R"(
server: {listen: "127.0.0.1:0", threads: 1}
backends: [{name: b, url: "sim://b", models: [m], sim: {profile: instant}}]
gpu: {gpus: [{model: H100-94GB, mig: [7g.94gb]}]}
)",
                              none);
  const gpu::GpuStatus d = declared->gpus();
  QCOMPARE(d.source, std::string("declared"));
  QVERIFY2(d.detail.find("not found (no NVIDIA driver on this machine); using the declared GPUs") != std::string::npos,
           d.detail.c_str());
  QCOMPARE(d.gpus.at(0).instances.at(0).mig.profile, std::string("7g.94gb"));
}

void GpuEngineTest::newMigInstancesGetWorkersWithoutAnApply() {
  // nvidia-smi -L as a script reading a file the test rewrites, as an
  // operator creating and destroying MIG instances would change it.
  QTemporaryDir dir;
  const QString list = dir.filePath("list.txt"), smi = dir.filePath("nvidia-smi");
  auto write = [](const QString& path, const QByteArray& text) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
  };
  const QByteArray gpu = "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-t)\n";
  const QByteArray mig0 = "  MIG 1g.10gb     Device  0: (UUID: MIG-t-0)\n";
  const QByteArray mig1 = "  MIG 1g.10gb     Device  1: (UUID: MIG-t-1)\n";
  write(list, gpu + mig0);
  write(smi, "#!/bin/sh\ncat '" + list.toUtf8() + "'\n");
  QFile::setPermissions(smi, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
  const std::string yaml = R"(
server: {listen: "127.0.0.1:0", threads: 1}
gpu:
  inventory: nvidia_smi
  nvidia_smi: ")" + smi.toStdString() + R"("
  poll_interval_ms: 100
  workers:
    - {name: w, command: ")" + workerCommand() + R"(", models: [m], health_path: /healthz}
)";
  auto engine = startEngine(yaml);
  QVERIFY(waitFor([&] { return healthy(*engine, "w-g0-0"); }, 30s));
  QCOMPARE(engine->gpus().source, std::string("nvidia_smi"));
  QCOMPARE(engine->gpus().gpus.at(0).instances.size(), size_t(1));

  // A second instance appears: a worker for it, in the routing table, no apply.
  const int64_t version = engine->configVersion();
  write(list, gpu + mig0 + mig1);
  QVERIFY(waitFor([&] { return healthy(*engine, "w-g0-1"); }, 30s));
  QVERIFY(waitFor([&] {
    for (const auto& b : engine->backends()) {
      if (b.name == "w-g0-1") return true;
    }
    return false;
  }));
  QCOMPARE(engine->configVersion(), version);
  std::set<std::string> seen;
  for (int i = 0; i < 40 && seen.size() < 2; ++i) {
    seen.insert(backendOf(engine->port(), R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":2})", {}));
  }
  QCOMPARE(seen, (std::set<std::string>{"w-g0-0", "w-g0-1"}));
  store::AuditFilter f;
  f.action_prefix = "gpu.";
  QVERIFY(!engine->audit(f).empty());

  // The first one goes: its worker is retired; the other keeps its name and
  // keeps running (workers are named by the instance's device index, not
  // its position in the list).
  const pid_t other = worker(engine->gpus(), "w-g0-1")->pid;
  write(list, gpu + mig1);
  QVERIFY(waitFor([&] { return !worker(engine->gpus(), "w-g0-0"); }, 30s));
  QVERIFY(healthy(*engine, "w-g0-1"));
  QCOMPARE(worker(engine->gpus(), "w-g0-1")->pid, other);
  for (const auto& b : engine->backends()) QVERIFY2(b.name != "w-g0-0", b.name.c_str());
}

void GpuEngineTest::launcherRestartsACrashingWorkerWithBackoff() {
  gpu::Launcher launcher;
  gpu::WorkerSpec s;
  s.name = "crash";
  s.instance = "MIG-x";
  s.command = "echo started >&2; exit 3";
  s.port = gpu::Launcher::freePort();
  s.backoff = 20ms;
  s.max_backoff = 80ms;
  s.start_timeout = 60s;
  launcher.setWorkers({s});
  QVERIFY(waitFor([&] { return launcher.states().at(0).restarts >= 3; }, 20s));
  const auto st = launcher.states().at(0);
  QCOMPARE(st.last_error, std::string("exited with status 3"));
  QVERIFY(st.state == "exited" || st.state == "starting");
  // The back-off doubles up to its cap, so restarts slow down but go on.
  QVERIFY(waitFor([&] { return launcher.states().at(0).restarts >= 6; }, 20s));
  launcher.setWorkers({});
  QVERIFY(launcher.states().empty());
}

void GpuEngineTest::launcherReportsAWorkerThatNeverBecomesHealthy() {
  gpu::Launcher launcher;
  launcher.setStopGrace(2s);
  gpu::WorkerSpec s;
  s.name = "mute";
  s.command = "sleep 60";
  s.env = {"CUDA_VISIBLE_DEVICES=MIG-y", "EXTRA=1"};
  s.port = gpu::Launcher::freePort();
  s.start_timeout = 300ms;
  s.backoff = 60s;  // stays reported until the test ends
  launcher.setWorkers({s});
  QVERIFY(waitFor([&] { return launcher.states().at(0).state == "unhealthy"; }, 20s));
  auto st = launcher.states().at(0);
  QCOMPARE(st.last_error, std::string("no 200 from /health within 300 ms"));
  QVERIFY(waitFor([&] { return launcher.states().at(0).pid == 0; }, 20s));  // killed and reaped
  st = launcher.states().at(0);
  QVERIFY(st.next_restart_ms > 0);
  QCOMPARE(st.restarts, 0u);
}

void GpuEngineTest::gpuConfigErrorsNameTheField() {
  const auto r = config::loadYaml(R"(
gpu:
  inventory: magic
  gpus:
    - model: V100
    - model: A100-80GB
      mig: [3g.40gb, 3g.40gb, 1g.10gb]
  placement:
    long_max_tokens: 100
  workers:
    - name: w
      command: "vllm serve x"
      models: []
      env: [NOEQUALS]
)",
                                  "gpu.yaml");
  const std::string text = config::formatErrors(r.errors);
  for (const char* want : {"gpu.inventory", "must be \"auto\"", "gpu.gpus[0].model", "unknown GPU model \"V100\"",
                           "gpu.gpus[1].mig", "1g.10gb does not fit", "gpu.workers[0].command", "{port}",
                           "gpu.workers[0].models", "gpu.workers[0].env[0]", "gpu.placement.long", "gpu.yaml:3:"}) {
    QVERIFY2(text.find(want) != std::string::npos, (std::string(want) + " not in:\n" + text).c_str());
  }
  // Workers alone are a valid config: no backends needed.
  const auto ok = config::loadYaml("gpu:\n  workers:\n    - {name: w, command: \"x --port {port}\", models: [m]}\n");
  QVERIFY2(ok.ok(), config::formatErrors(ok.errors).c_str());
}

QTEST_APPLESS_MAIN(GpuEngineTest)
