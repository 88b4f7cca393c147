#!/usr/bin/env python3
"""Spillway benchmark suite: the gateway against direct access and against nginx.

Runs, in one go and on loopback only:
  overhead   the same load straight to a fast upstream, through spillwayd, and
             through nginx as a keep-alive reverse proxy, in interleaved rounds
  streaming  64-delta streams at 20 ms through spillwayd vs direct
  memory     spillwayd's peak RSS in those runs and with 1,000 idle clients
  loadgen    what the load generator itself sustains on one core
  scenario   the scenario files in tests/bench/scenarios/ through spillwayd
  balancing  policies side by side on simulated fleets (tests/bench/balancing.py)
  busy fleet a fleet driven to 3x its capacity, unprotected vs admission vs
             admission + degradation (tests/bench/busy_fleet.py)
  cache      L1 hits vs misses vs nginx, disk-tier lookups with 1 M entries, a
             burst of identical requests, a Zipf workload on a busy fleet with
             the cache on and off (tests/bench/cache.py)
  gpu        a declared A100 unpartitioned vs the article's 7 x 1g layout with
             placement, sim workers launched by spillwayd; the layout planner's
             time on 8 GPUs (tests/bench/gpu.py)

Writes every raw report (JSON) and summary.json / summary.md into --out.
Usage: tests/bench/run_bench.py [--build build/release] [--out bench-results]
                                [--rounds 3] [--seconds 2] [--smoke] [--throughput-only]
                                [--baseline-build DIR | --compare-to REV] [--connections 16,64]
                                [--no-syscalls] [--balancing-only] [--busy-fleet-only]
                                [--cache-only] [--gpu-only]
--throughput-only is the hot-path guard: interleaved rounds of direct / spillwayd / nginx (and, with
--compare-to REV, REV's spillwayd built on the side) at 16 and 64 connections, the added latency at one
connection, and system calls per answered request of each proxy (perf stat on their processes).
--smoke runs everything with a tiny load and checks that the JSON is sane
(CTest runs it so the suite cannot rot); it asserts nothing about speed.
"""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAST_BODY = ('{"id":"fast","object":"chat.completion","created":0,"model":"bench","choices":[{"index":0,'
             '"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
             '"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def read_listen_port(proc):
    for _ in range(50):
        line = proc.stdout.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            return int(m.group(1))
    raise RuntimeError("process did not report its port")


def rss_kb(pid, field="VmHWM"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def nginx_conf(workdir, listen, upstreams, workers):
    """upstreams: {location_prefix: port, or a list of ports (round robin)} proxied with keep-alive; or 'fast'
    for a static answer."""
    blocks, servers = [], []
    for i, (prefix, target) in enumerate(upstreams.items()):
        if target == "fast":
            servers.append(f"""    location {prefix} {{ default_type application/json; return 200 '{FAST_BODY}'; }}""")
        else:
            ports = target if isinstance(target, list) else [target]
            servers_of = " ".join(f"server 127.0.0.1:{p};" for p in ports)
            blocks.append(f"  upstream u{i} {{ {servers_of} keepalive 256; }}")
            servers.append(f"""    location {prefix} {{
      proxy_pass http://u{i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}""")
    body = "\n".join(servers)
    ups = "\n".join(blocks)
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  keepalive_requests 1000000;
{ups}
  server {{
    listen 127.0.0.1:{listen};
    location /health {{ return 200 '{{"status":"ok"}}'; }}
{body}
  }}
}}
"""


def start_nginx(procs, nginx, workdir, name, upstreams, workers):
    d = Path(workdir) / name
    d.mkdir()
    port = free_port()
    (d / "nginx.conf").write_text(nginx_conf(d, port, upstreams, workers))
    procs.start([nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"])
    wait_port(port)
    return port


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = Path(args.build)
        self.bench = str(self.build / "app" / "spillway-bench")
        self.spillwayd = str(self.build / "app" / "spillwayd")
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.runs = 0

    def load(self, name, target, model, seconds, rate=None, concurrency=None, stream=False, itl=0,
             max_connections=4096, threads=1, extra=()):
        self.runs += 1
        path = self.out / f"{self.runs:03d}-{name}.json"
        cmd = [self.bench, "--quiet", "--target", target, "--model", model, "--duration-ms", str(int(seconds * 1000)),
               "--json", str(path), "--max-connections", str(max_connections), "--threads", str(threads)]
        if rate:
            cmd += ["--rate", str(rate)]
        if concurrency:
            cmd += ["--concurrency", str(concurrency)]
        if stream:
            cmd += ["--stream"]
        if itl:
            cmd += ["--expected-itl-ms", str(itl)]
        cmd += list(extra)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(path.read_text())


def q(report, key="latency", p="p50_us"):
    return report["overall"][key][p]


def med(values):
    return statistics.median(values) if values else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--throughput-only", action="store_true",
                    help="only the max-throughput A/B (64 clients): direct, spillway, nginx, interleaved")
    ap.add_argument("--baseline-build", help="with --throughput-only: also run this build's spillwayd "
                    "(e.g. a checkout of the previous commit) as 'spillway-base', interleaved in the same rounds")
    ap.add_argument("--compare-to", metavar="REV", help="with --throughput-only: build REV's spillwayd in "
                    "build/compare/<sha> (git archive + its release preset, ccache shared) and run it as "
                    "'spillway-base'")
    ap.add_argument("--connections", default="16,64",
                    help="with --throughput-only: the client connection counts to measure (default 16,64)")
    ap.add_argument("--no-syscalls", action="store_true",
                    help="with --throughput-only: skip counting system calls per request (perf stat)")
    ap.add_argument("--balancing-only", action="store_true", help="only the balancing benchmarks")
    ap.add_argument("--busy-fleet-only", action="store_true", help="only the busy-fleet (admission) benchmark")
    ap.add_argument("--cache-only", action="store_true", help="only the response-cache benchmarks")
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU (MIG placement, planner) benchmark")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.seconds = 1, 0.3

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit: thousands of sockets
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("nginx not found: installer/debian-deps.sh installs nginx-light")

    b = Bench(args)
    procs = Procs()
    workdir = tempfile.mkdtemp(prefix="spillway-bench-")
    cores = os.cpu_count() or 1
    summary = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cores": cores, "cpu": cpu_model(), "kernel": platform.release()},
               "commit": git_commit(), "smoke": args.smoke, "rounds": args.rounds, "seconds_per_run": args.seconds}
    try:
        only = ("balancing" if args.balancing_only else "busy_fleet" if args.busy_fleet_only
                else "cache" if args.cache_only else "gpu" if args.gpu_only else None)
        if only:
            # One suite on its own: <name>.json and <name>.md in --out.
            import importlib
            suite = importlib.import_module(only)
            summary[only] = suite.run_all(b, procs, workdir, args)
            stem = only.replace("_", "-")
            (b.out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
            md = suite.markdown(summary[only])
            (b.out / f"{stem}.md").write_text(md)
            print(md)
            if args.smoke:
                suite.check_sane(summary[only])
            return
        # Upstreams: a fast static server (nginx, 1 worker) and a streaming simulator.
        fast = start_nginx(procs, nginx, workdir, "fast", {"/v1/": "fast"}, 1)
        sim = procs.start([b.spillwayd, "sim", "--listen", "127.0.0.1:0", "--profile", "instant", "--threads", "1",
                           "--inter-token-ms", "20", "--min-output-tokens", "64", "--max-output-tokens", "64",
                           "--max-num-seqs", "100000", "--max-waiting", "100000", "--model", "stream"])
        sim_port = read_listen_port(sim)
        # spillwayd in front of both.
        cfg = Path(workdir) / "spillway.yaml"
        cfg.write_text(f"""server: {{listen: "127.0.0.1:0"}}
upstream: {{max_idle_connections: 1024}}
backends:
  - {{name: fast, url: "http://127.0.0.1:{fast}", models: [bench], health_check: {{path: /health}}}}
  - {{name: stream, url: "http://127.0.0.1:{sim_port}", models: [stream], health_check: {{path: /healthz}}}}
""")
        gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "warn", "--control-listen", "none"])
        gw_port = read_listen_port(gw)
        # nginx as the reference reverse proxy, one worker per core.
        ngx = start_nginx(procs, nginx, workdir, "proxy", {"/v1/": fast}, cores)
        ngx_master = procs.procs[-1]  # start_nginx's process: the proxy's master
        targets = {"direct": f"http://127.0.0.1:{fast}", "spillway": f"http://127.0.0.1:{gw_port}",
                   "nginx": f"http://127.0.0.1:{ngx}"}
        if args.throughput_only:
            if args.compare_to:
                args.baseline_build = str(build_revision(args.compare_to))
                summary["compare_to"] = args.compare_to
            pids = {"spillway": [gw.pid], "nginx": process_tree(ngx_master.pid)}
            if args.baseline_build:
                base = procs.start([str(Path(args.baseline_build) / "app" / "spillwayd"), "--config", str(cfg),
                                    "--log-level", "warn", "--control-listen", "none"])
                targets["spillway-base"] = f"http://127.0.0.1:{read_listen_port(base)}"
                pids["spillway-base"] = [base.pid]
            summary.update(throughput_ab(b, targets, pids, args))
            (b.out / "throughput.json").write_text(json.dumps(summary, indent=2) + "\n")
            print(throughput_markdown(summary))
            (b.out / "throughput.md").write_text(throughput_markdown(summary))
            return
        summary["overhead"] = overhead(b, targets, args)
        summary["memory"] = {"after_overhead_peak_rss_kb": rss_kb(gw.pid)}
        summary["streaming"] = streaming(b, f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}", args)
        summary["memory"]["after_streaming_peak_rss_kb"] = rss_kb(gw.pid)
        summary["memory"]["idle_clients"] = idle_clients(b, gw, f"http://127.0.0.1:{gw_port}", args)
        summary["loadgen"] = loadgen_capacity(b, targets["direct"], args)
        # Scenarios describe the default fleet: run them on a spillwayd with the embedded config.
        demo = procs.start([b.spillwayd, "--listen", "127.0.0.1:0", "--log-level", "warn", "--control-listen", "none"])
        summary["scenarios"] = scenarios(b, f"http://127.0.0.1:{read_listen_port(demo)}", args)
        import balancing
        summary["balancing"] = balancing.run_all(b, procs, workdir, args)
        import busy_fleet
        summary["busy_fleet"] = busy_fleet.run_all(b, procs, workdir, args)
        import cache
        summary["cache"] = cache.run_all(b, procs, workdir, args)
        import gpu
        summary["gpu"] = gpu.run_all(b, procs, workdir, args)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    (b.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    import balancing
    import busy_fleet
    import cache
    import gpu
    md = (markdown(summary) + balancing.markdown(summary["balancing"]) + busy_fleet.markdown(summary["busy_fleet"]) +
          cache.markdown(summary["cache"]) + gpu.markdown(summary["gpu"]))
    (b.out / "summary.md").write_text(md)
    print(md)
    if args.smoke:
        check_sane(summary)
        balancing.check_sane(summary["balancing"])
        busy_fleet.check_sane(summary["busy_fleet"])
        cache.check_sane(summary["cache"])
        gpu.check_sane(summary["gpu"])
        print("smoke: JSON sane")


def build_revision(rev):
    """Builds REV's spillwayd in build/compare/<sha>/ from `git archive` (no worktree state), with that
    revision's own release preset, and returns its build directory."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", rev], capture_output=True, text=True,
                         check=True).stdout.strip()
    src = ROOT / "build" / "compare" / sha
    if not (src / "CMakeLists.txt").exists():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", sha], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(src)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            sys.exit(f"git archive {rev} failed")
    env = dict(os.environ, CCACHE_BASEDIR=str(src), CCACHE_NOHASHDIR="true")
    build = src / "build" / "release"
    print(f"building {rev} ({sha}) in {build}", flush=True)
    if not (build / "build.ninja").exists():
        subprocess.run(["cmake", "--preset", "release", "-DSPILLWAY_BUILD_UI=OFF", "-DSPILLWAY_BUILD_TESTS=OFF"],
                       cwd=src, env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "--target", "spillwayd"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return build


def process_tree(pid):
    """pid and its children (nginx's master and its workers)."""
    out = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            out += [int(k) for k in kids]
    except OSError:
        pass
    return out


SYSCALL_KINDS = ["read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "epoll_wait",
                 "epoll_pwait", "epoll_ctl", "timerfd_settime", "futex", "accept4", "connect", "close", "ioctl",
                 "io_uring_enter", "setsockopt", "getsockopt", "getsockname", "getpeername", "mmap", "munmap",
                 "madvise", "brk"]


def count_syscalls(b, name, target, pids, seconds, connections):
    """System calls per answered request, per kind, of the processes in pids during one load run
    (perf's syscalls tracepoints; None where perf cannot attach)."""
    perf = shutil.which("perf")
    if not perf:
        return None
    out = b.out / f"perf-syscalls-{name}-{connections}.csv"
    events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{k}" for k in SYSCALL_KINDS]
    p = subprocess.Popen([perf, "stat", "-x", ",", "-o", str(out), "-e", ",".join(events),
                          "-p", ",".join(str(x) for x in pids)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(0.3)  # perf attaches to every thread before the load starts
    if p.poll() is not None:
        print(f"perf stat failed, no system-call counts: {p.stderr.read().strip()}", file=sys.stderr)
        return None
    report = b.load(f"syscalls-{name}-{connections}", target, "bench", seconds, concurrency=connections)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    ok = report["overall"]["ok"]
    counts = {}
    for line in out.read_text().splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            counts[f[2].split(":")[-1].replace("sys_enter_", "")] = int(f[0])
    total = counts.pop("sys_enter", 0)
    per = {k: round(v / ok, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v}
    per["other"] = round((total - sum(counts.values())) / ok, 3)
    # The load's start and end (connects, closes) fall inside the window; over a run of thousands of
    # requests per connection they add well under 0.01 a request.
    return {"requests": ok, "total_per_request": round(total / ok, 3), "per_request": per}


def cpu_seconds(pids):
    """User and system CPU seconds so far of the processes in pids (all their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(f[11]) / tick
        system += int(f[12]) / tick
    return user, system


def throughput_ab(b, targets, pids, args):
    """Interleaved rounds at each connection count, the added latency at one connection, and the system calls
    per request of each proxy: the hot-path comparison of docs/benchmarks.md."""
    conns = [int(c) for c in args.connections.split(",")]
    order = list(targets)
    thr = {c: {t: [] for t in targets} for c in conns}
    cpu = {c: {t: {"user": [], "system": []} for t in pids} for c in conns}
    one = {t: {"p50_us": [], "p99_us": []} for t in targets}
    for rnd in range(args.rounds):
        rot = order[rnd % len(order):] + order[:rnd % len(order)]
        for t in rot:
            for c in conns:
                before = cpu_seconds(pids.get(t, []))
                r = b.load(f"max-{t}-{c}", targets[t], "bench", args.seconds, concurrency=c)
                thr[c][t].append(r["throughput"])
                if t in pids and r["overall"]["ok"]:
                    after = cpu_seconds(pids[t])
                    cpu[c][t]["user"].append((after[0] - before[0]) * 1e6 / r["overall"]["ok"])
                    cpu[c][t]["system"].append((after[1] - before[1]) * 1e6 / r["overall"]["ok"])
            r = b.load(f"one-{t}", targets[t], "bench", args.seconds, concurrency=1)
            one[t]["p50_us"].append(q(r, p="p50_us"))
            one[t]["p99_us"].append(q(r, p="p99_us"))
    res = {"connections": conns,
           "max_throughput": {c: {t: {"runs": [round(x) for x in v], "median": med(v)} for t, v in row.items()}
                              for c, row in thr.items()},
           "one_client": {t: {k: med(v) for k, v in row.items()} for t, row in one.items()},
           # CPU the proxy process spent per answered request (user / system µs, medians of the rounds):
           # from /proc/<pid>/stat around each run, so without perf's own overhead.
           "cpu_us_per_request": {c: {t: {k: round(med(v), 2) for k, v in row.items()} for t, row in by.items()}
                                  for c, by in cpu.items()}}
    direct = res["one_client"]["direct"]
    for t, row in res["one_client"].items():
        row["added_p50_us"] = row["p50_us"] - direct["p50_us"]
        row["added_p99_us"] = row["p99_us"] - direct["p99_us"]
    res["ratios"] = {}
    for c in conns:
        m = res["max_throughput"][c]
        res["ratios"][f"spillway_to_nginx_{c}"] = m["spillway"]["median"] / m["nginx"]["median"]
        if "spillway-base" in m:
            res["ratios"][f"spillway_to_base_{c}"] = m["spillway"]["median"] / m["spillway-base"]["median"]
    if not args.no_syscalls:
        res["syscalls"] = {}
        for t, p in pids.items():
            res["syscalls"][t] = count_syscalls(b, t, targets[t], p, args.seconds, conns[0])
    return res


def throughput_markdown(s):
    lines = [f"commit {s.get('commit')}" + (f", compared to {s['compare_to']}" if s.get("compare_to") else "") +
             f"; {s['rounds']} interleaved rounds of {s['seconds_per_run']} s; {s['machine']['cpu']}", "",
             "| target | " + " | ".join(f"req/s at {c} conns (median)" for c in s["connections"]) +
             " | one conn p50 / p99 | added p50 / p99 |", "|---|" + "---|" * (len(s["connections"]) + 2)]
    for t in s["one_client"]:
        o = s["one_client"][t]
        lines.append(f"| {t} | " + " | ".join(f"{s['max_throughput'][c][t]['median']:,.0f}"
                                              for c in s["connections"]) +
                     f" | {o['p50_us']:.0f} / {o['p99_us']:.0f} µs | {o['added_p50_us']:+.0f} / "
                     f"{o['added_p99_us']:+.0f} µs |")
    lines += ["", "CPU per answered request of the proxy's processes (user + system µs, medians):", ""]
    for c, by in s["cpu_us_per_request"].items():
        lines.append(f"- {c} conns: " + ", ".join(f"{t} {v['user']:.1f} + {v['system']:.1f} = "
                                                 f"**{v['user'] + v['system']:.1f}**" for t, v in by.items()))
    lines.append("")
    for k, v in s["ratios"].items():
        lines.append(f"- {k.replace('_', ' ')}: **{v:.3f}**")
    sc = s.get("syscalls") or {}
    if sc:
        lines += ["", f"System calls per answered request at {s['connections'][0]} connections (perf stat):", ""]
        for t, v in sc.items():
            if not v:
                lines.append(f"- {t}: not counted (perf unavailable)")
                continue
            kinds = ", ".join(f"{k} {n:.2f}" for k, n in v["per_request"].items() if n >= 0.01)
            lines.append(f"- {t}: **{v['total_per_request']:.2f}** ({kinds})")
    return "\n".join(lines) + "\n"


def overhead(b, targets, args):
    res = {"one_client": {}, "fixed_rate": {}, "max_throughput": {}, "max_rate_p99_under": {}}
    order = list(targets)
    rates = [200] if args.smoke else [1000, 5000, 10000]
    lat = {t: {"p50": [], "p99": []} for t in targets}
    fixed = {r: {t: {"p50": [], "p99": [], "errors": []} for t in targets} for r in rates}
    thr = {t: [] for t in targets}
    for rnd in range(args.rounds):
        rot = order[rnd % len(order):] + order[:rnd % len(order)]  # interleave, rotating who goes first
        for t in rot:
            r = b.load(f"1client-{t}", targets[t], "bench", args.seconds, concurrency=1)
            lat[t]["p50"].append(q(r))
            lat[t]["p99"].append(q(r, p="p99_us"))
        for rate in rates:
            for t in rot:
                r = b.load(f"rate{rate}-{t}", targets[t], "bench", args.seconds, rate=rate)
                fixed[rate][t]["p50"].append(q(r))
                fixed[rate][t]["p99"].append(q(r, p="p99_us"))
                fixed[rate][t]["errors"].append(r["overall"]["sent"] - r["overall"]["ok"])
        for t in rot:
            r = b.load(f"max-{t}", targets[t], "bench", args.seconds, concurrency=64)
            thr[t].append(r["throughput"])
    for t in targets:
        res["one_client"][t] = {"p50_us": med(lat[t]["p50"]), "p99_us": med(lat[t]["p99"])}
        res["max_throughput"][t] = med(thr[t])
    for rate in rates:
        res["fixed_rate"][str(rate)] = {t: {"p50_us": med(fixed[rate][t]["p50"]), "p99_us": med(fixed[rate][t]["p99"]),
                                            "errors": max(fixed[rate][t]["errors"])} for t in targets}
    # The highest of a ladder of rates each target serves with p99 under 1 ms / 10 ms and no error.
    ladder = [200, 400] if args.smoke else [1000, 2000, 5000, 10000, 15000, 20000, 30000, 40000]
    for t in targets:
        best = {"1ms": 0, "10ms": 0}
        for rate in ladder:
            r = b.load(f"ladder{rate}-{t}", targets[t], "bench", args.seconds, rate=rate)
            p99 = q(r, p="p99_us")
            clean = r["overall"]["ok"] == r["overall"]["sent"]
            if clean and p99 < 1000:
                best["1ms"] = rate
            if clean and p99 < 10000:
                best["10ms"] = rate
            if not clean or p99 >= 10000:
                break
        res["max_rate_p99_under"][t] = best
    return res


def streaming(b, direct, gateway, args):
    levels = [20] if args.smoke else [100, 500, 1000, 2000]
    seconds = 1.5 if args.smoke else max(args.seconds, 3.0)
    out = {"levels": {}, "max_clean_concurrency": {}}
    for level in levels:
        row = {}
        for name, target in (("direct", direct), ("spillway", gateway)):
            r = b.load(f"stream{level}-{name}", target, "stream", seconds, concurrency=level, stream=True, itl=20,
                       max_connections=level + 16)
            o = r["overall"]
            row[name] = {"ttft_p50_us": o["ttft"]["p50_us"], "ttft_p99_us": o["ttft"]["p99_us"],
                         "gap_p50_us": o["frame_gap"]["p50_us"], "gap_p99_us": o["frame_gap"]["p99_us"],
                         "streams": o["ok"], "frames": o["frames"], "stalls": o["stalls"],
                         "lost": o["streams_lost"], "errors": sum(o["errors"].values())}
        out["levels"][str(level)] = row
        for name in ("direct", "spillway"):
            x = row[name]
            if x["stalls"] == 0 and x["lost"] == 0 and x["errors"] == 0 and x["streams"] > 0:
                out["max_clean_concurrency"][name] = level
    return out


def idle_clients(b, gw, target, args):
    n = 50 if args.smoke else 1000
    before = rss_kb(gw.pid, "VmRSS")
    p = subprocess.Popen([b.bench, "idle", "--target", target, "--connections", str(n), "--hold-ms", "1500"],
                         stdout=subprocess.PIPE, text=True)
    info = json.loads(p.stdout.readline())
    during = rss_kb(gw.pid, "VmRSS")  # all connections are open and idle now
    p.wait()
    return {"connections": info["idle_connections"], "answered": info["answered"], "rss_before_kb": before,
            "rss_with_idle_kb": during}


def loadgen_capacity(b, direct, args):
    r = b.load("loadgen-capacity", direct, "bench", args.seconds, concurrency=64, threads=1)
    return {"requests_per_s_one_thread": r["throughput"], "p99_us": q(r, p="p99_us")}


def scenarios(b, gateway, args):
    out = {}
    for f in sorted((ROOT / "tests" / "bench" / "scenarios").glob("*.yaml")):
        b.runs += 1
        path = b.out / f"{b.runs:03d}-scenario-{f.stem}.json"
        cmd = [b.bench, "--quiet", "--scenario", str(f), "--target", gateway, "--json", str(path)]
        if args.smoke:
            cmd += ["--time-scale", "0.05"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        r = json.loads(path.read_text())
        out[f.stem] = {"sent": r["overall"]["sent"], "ok": r["overall"]["ok"], "errors": r["overall"]["errors"],
                       "p99_us": q(r, p="p99_us")}
    return out


def us(x):
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} µs"


def markdown(s):
    o = s["overhead"]
    L = [f"# Benchmark results", "",
         f"{s['date']} · commit {s['commit']} · {s['machine']['cores']} cores · {s['machine']['cpu']}"
         f"{' · SMOKE (tiny load, numbers meaningless)' if s['smoke'] else ''}",
         f"Medians of {s['rounds']} interleaved rounds, {s['seconds_per_run']} s per run.", "",
         "## Overhead: one client (closed loop)", "",
         "| path | p50 | p99 | added p50 | added p99 |", "|---|---|---|---|---|"]
    d = o["one_client"]["direct"]
    for t, v in o["one_client"].items():
        L.append(f"| {t} | {us(v['p50_us'])} | {us(v['p99_us'])} | {us(v['p50_us'] - d['p50_us'])} | "
                 f"{us(v['p99_us'] - d['p99_us'])} |")
    L += ["", "## Overhead: fixed open-loop rates", "", "| rate | path | p50 | p99 | added p99 | errors |",
          "|---|---|---|---|---|---|"]
    for rate, row in o["fixed_rate"].items():
        for t, v in row.items():
            L.append(f"| {rate}/s | {t} | {us(v['p50_us'])} | {us(v['p99_us'])} | "
                     f"{us(v['p99_us'] - row['direct']['p99_us'])} | {v['errors']} |")
    L += ["", "## Throughput", "", "| path | max req/s (64 clients) | highest rate with p99 < 1 ms | with p99 < 10 ms |",
          "|---|---|---|---|"]
    for t, v in o["max_throughput"].items():
        m = o["max_rate_p99_under"][t]
        L.append(f"| {t} | {v:.0f} | {m['1ms']} | {m['10ms']} |")
    st = s["streaming"]
    L += ["", "## Streaming (64 deltas, 20 ms apart)", "",
          "| streams | path | TTFT p50 | TTFT p99 | frame gap p50 | gap p99 | stalls | lost | errors |",
          "|---|---|---|---|---|---|---|---|---|"]
    for level, row in st["levels"].items():
        for t, v in row.items():
            L.append(f"| {level} | {t} | {us(v['ttft_p50_us'])} | {us(v['ttft_p99_us'])} | {us(v['gap_p50_us'])} | "
                     f"{us(v['gap_p99_us'])} | {v['stalls']} | {v['lost']} | {v['errors']} |")
    L.append(f"\nMost concurrent streams with no stall, loss or error: "
             f"{', '.join(f'{k} {v}' for k, v in st['max_clean_concurrency'].items())}")
    m = s["memory"]
    L += ["", "## Memory (spillwayd)", "",
          f"- peak RSS after the overhead runs: {m['after_overhead_peak_rss_kb'] / 1024:.1f} MiB",
          f"- peak RSS after the streaming runs: {m['after_streaming_peak_rss_kb'] / 1024:.1f} MiB",
          f"- RSS with {m['idle_clients']['connections']} idle keep-alive clients: "
          f"{m['idle_clients']['rss_with_idle_kb'] / 1024:.1f} MiB (before: {m['idle_clients']['rss_before_kb'] / 1024:.1f} MiB)",
          "", "## Load generator", "",
          f"- one thread, 64 closed-loop clients against the fast upstream: "
          f"{s['loadgen']['requests_per_s_one_thread']:.0f} req/s", "", "## Scenarios (through spillwayd)", "",
          "| scenario | sent | ok | errors | p99 |", "|---|---|---|---|---|"]
    for name, v in s["scenarios"].items():
        L.append(f"| {name} | {v['sent']} | {v['ok']} | {v['errors']} | {us(v['p99_us'])} |")
    return "\n".join(L) + "\n"


def check_sane(s):
    o = s["overhead"]
    for t in ("direct", "spillway", "nginx"):
        assert o["one_client"][t]["p50_us"] > 0, t
        assert o["max_throughput"][t] > 0, t
    for row in s["streaming"]["levels"].values():
        for v in row.values():
            assert v["streams"] > 0 and v["frames"] > 0, v
    assert s["memory"]["after_overhead_peak_rss_kb"] > 0
    assert s["memory"]["idle_clients"]["answered"] == s["memory"]["idle_clients"]["connections"] > 0
    assert s["loadgen"]["requests_per_s_one_thread"] > 0
    for v in s["scenarios"].values():
        assert v["ok"] > 0, v


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit():
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
