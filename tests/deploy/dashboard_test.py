#!/usr/bin/env python3
"""The Grafana dashboard's queries against a real Prometheus scraping a real
spillwayd with traffic: every query must be valid PromQL, and the panels that
show traffic must have data.

  dashboard_test.py SPILLWAYD SPILLWAY_BENCH [--render OUT.png [--history-s N]]

Starts, on loopback: spillwayd on the GPU demo config (simulated backends on a
declared A100, so the GPU panels have data too), spillway-bench sending a
steady load, and Prometheus (Debian's) scraping spillwayd every second with
the labels a Kubernetes ServiceMonitor adds (namespace, service, pod). Then
it asks Prometheus for every target of every panel, with the dashboard's
$namespace variable filled in. Everything it starts stops with it.

--render draws the panels with the data Prometheus returned (matplotlib,
not Grafana: Debian 12 has no Grafana) into OUT.png, the screenshot in
docs/screenshots/; --history-s lets N seconds of traffic accumulate first.
Exit 77 (skip) when prometheus is not installed.
"""
import json
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import spillwayd_process

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/kubernetes/components/monitoring/dashboard.json"
# Panels that must show data with the demo config and traffic (the others —
# sheds, degradation, Redis, reload failures, GPU memory — may be empty on a
# healthy demo fleet; their queries must still be valid).
MUST_HAVE_DATA = {"Requests by outcome", "In flight", "Replicas", "Response time", "Time to first token",
                  "Queue depth by class", "Backends by state", "In flight per backend",
                  "Concurrency limit per backend", "Latency EWMA per backend", "Config reloads",
                  "GPU utilisation", "MIG instances: in flight and queued", "Cache outcomes"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} within {seconds} s")


def main():
    args = sys.argv[1:]
    render = None
    history_s = 0
    if "--render" in args:
        i = args.index("--render")
        render = pathlib.Path(args[i + 1])
        del args[i:i + 2]
    if "--history-s" in args:
        i = args.index("--history-s")
        history_s = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__)
        sys.exit(2)
    spillwayd, bench = args
    prometheus = shutil.which("prometheus")
    if not prometheus:
        print("SKIP: prometheus is not installed (installer/debian-deps.sh installs it)")
        sys.exit(77)
    dashboard = json.loads(DASHBOARD.read_text())
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            d, port = spillwayd_process.start(spillwayd, ["--config", str(ROOT / "resources/config/gpu-demo.yaml"),
                                                          "--listen", "127.0.0.1:0", "--control-listen", "none",
                                                          "--data-dir", tmp + "/sw"])
            procs.append(d)
            if not port:
                raise SystemExit("FAIL: spillwayd did not start")
            models = [m["id"] for m in get_json(f"http://127.0.0.1:{port}/v1/models")["data"]]
            wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz").get("status") == "ready", 60,
                     "spillwayd ready (its GPU workers healthy)")
            # Steady traffic on every model for the whole test.
            for model in models:
                procs.append(subprocess.Popen([bench, "--target", f"http://127.0.0.1:{port}", "--model", model,
                                               "--rate", "20", "--duration-ms", str(120000 + history_s * 1000), "--quiet"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            prom_port = free_port()
            cfg = pathlib.Path(tmp) / "prometheus.yml"
            cfg.write_text(
                "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n"
                "  - job_name: spillway\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{port}'], labels: {{namespace: spillway, service: spillway, pod: spillway-0}}}}]\n")
            procs.append(subprocess.Popen([prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/tsdb",
                                           f"--web.listen-address=127.0.0.1:{prom_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            api = f"http://127.0.0.1:{prom_port}/api/v1"

            def query(expr):
                url = f"{api}/query_range?" + urllib.parse.urlencode(
                    {"query": expr, "start": time.time() - max(60, history_s), "end": time.time(), "step": "2"})
                try:
                    return get_json(url)
                except urllib.error.HTTPError as e:
                    return json.load(e)

            # Enough samples for rate() over the dashboard's windows.
            wait_for(lambda: get_json(f"{api}/query?query=count(spillway_requests_total)")["data"]["result"], 30,
                     "Prometheus scraping spillwayd")
            # A dozen scrapes, so rates and quantiles have several points.
            wait_for(lambda: any(float(r["value"][1]) >= 12 for r in get_json(
                f"{api}/query?query=count_over_time(spillway_requests_in_flight[1m])")["data"]["result"]), 60,
                "a dozen scrapes")
            # For a screenshot: a longer history (the load runs for 2 minutes
            # more than this).
            if history_s:
                started = time.monotonic()
                wait_for(lambda: time.monotonic() - started >= history_s, history_s + 5, "the history")
            results = {}
            failures = []
            for panel in dashboard["panels"]:
                if panel["type"] == "row":
                    continue
                series = []
                for t in panel["targets"]:
                    expr = t["expr"].replace("$namespace", "spillway")
                    r = query(expr)
                    if r.get("status") != "success":
                        failures.append(f'{panel["title"]}: {expr}: {r.get("error")}')
                        continue
                    for s in r["data"]["result"]:
                        legend = re.sub(r"\{\{(\w+)\}\}", lambda m: s["metric"].get(m.group(1), ""), t["legendFormat"])
                        series.append((legend, [(float(x), float(v)) for x, v in s["values"] if v not in ("NaN", "+Inf")]))
                results[panel["title"]] = (panel, series)
                has_data = any(points for _, points in series)
                print(f'{"ok  " if has_data else "none"} {panel["title"]}: {len(series)} series')
                if panel["title"] in MUST_HAVE_DATA and not has_data:
                    failures.append(f'{panel["title"]}: no data with the demo fleet under load')
            if render:
                draw(dashboard, results, render)
            for f in failures:
                print(f"FAIL {f}")
            if failures:
                sys.exit(1)
            print(f"all {len(results)} panels' queries are valid; those that should have data do")
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


def draw(dashboard, results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    rows = max(p["gridPos"]["y"] for p in panels) + 8
    fig = plt.figure(figsize=(24, rows * 0.42), facecolor="#111217")
    fig.suptitle("Spillway — live data from a real Prometheus scraping spillwayd (dashboard.json's queries; "
                 "drawn with matplotlib)", color="#d8d9da", fontsize=14, y=0.995)
    grid = fig.add_gridspec(rows, 24, hspace=0.0, wspace=0.0)
    for p in dashboard["panels"]:
        g = p["gridPos"]
        if p["type"] == "row":
            ax = fig.add_subplot(grid[g["y"]:g["y"] + 1, :])
            ax.axis("off")
            ax.text(0.0, 0.9, p["title"], color="#d8d9da", fontsize=13, fontweight="bold", transform=ax.transAxes)
            continue
        ax = fig.add_subplot(grid[g["y"] + 1:g["y"] + g["h"], g["x"]:g["x"] + g["w"] - 1 if g["x"] + g["w"] < 24 else 24])
        ax.set_facecolor("#181b1f")
        for side in ax.spines.values():
            side.set_color("#2c3235")
        ax.tick_params(colors="#8e8e8e", labelsize=7)
        ax.set_title(p["title"], color="#d8d9da", fontsize=10, loc="left")
        _, series = results.get(p["title"], (p, []))
        for legend, points in series[:8]:
            if points:
                t0 = points[0][0]
                ax.plot([x - t0 for x, _ in points], [v for _, v in points], linewidth=1.2, label=legend or "value")
        if any(points for _, points in series):
            ax.legend(fontsize=6, loc="upper left", facecolor="#181b1f", edgecolor="#2c3235", labelcolor="#d8d9da")
        else:
            ax.text(0.5, 0.5, "no data", color="#8e8e8e", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("seconds", color="#8e8e8e", fontsize=7)
        unit = p["fieldConfig"]["defaults"].get("unit", "")
        ax.set_ylabel({"reqps": "req/s", "s": "seconds", "percentunit": "ratio", "bytes": "bytes"}.get(unit, ""),
                      color="#8e8e8e", fontsize=7)
    fig.subplots_adjust(left=0.03, right=0.99, top=0.97, bottom=0.02)
    fig.savefig(out, dpi=80, facecolor=fig.get_facecolor())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
