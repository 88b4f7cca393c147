"""Soak: the busy fleet at 70 % of capacity for a long time, watching for leaks (issue 24).

Three simulated inference servers (the busy-fleet benchmark's) behind one
spillwayd with the cache (a fifth of the requests deterministic, from a
small set of prompts, so it is used), rate limits (generous, so they decide
every request and refuse none) and automatic degradation on. The load
(tests/bench/busy_fleet.py's five tenants) runs for --minutes at 70 % of
the fleet's capacity while this script samples, every --every seconds,
the gateway's RSS, open file descriptors, threads, queue depth and the
interval's latency percentiles (from its /metrics histogram), into
bench-results/soak.json and, when python3-matplotlib is installed,
bench-results/soak.png.

--check fails (exit 1) when, after the warm-up (the first fifth of the
run), RSS grows more than 5 % (median of the last third against the first
third), open files grow (by more than 16 and more than a quarter), or — with --check-latency,
for the long documented run, not CI's short one on a shared machine — the
interval p99 drifts more than 10 %.

Usage: python3 tests/bench/soak.py [--build build/release] [--minutes 60] [--every 10] [--check] [--check-latency]
       make soak SOAK_MINUTES=60
"""
import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import busy_fleet  # noqa: E402
from run_bench import ROOT, Procs, read_listen_port  # noqa: E402


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return {"rss_mb": int(out["VmRSS"].split()[0]) / 1024, "threads": int(out["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def histogram(text, name):
    """Cumulative bucket counts of a histogram family, summed over its labels: {le: count}."""
    buckets = {}
    for m in re.finditer(rf'^{name}_bucket\{{([^}}]*)\}} ([0-9.e+]+)$', text, re.M):
        le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0) + float(m.group(2))
    return buckets


def quantile(before, after, q):
    """The q-quantile of what the histogram counted between two scrapes, interpolated linearly inside its
    bucket (as Prometheus's histogram_quantile does)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for b, c in zip(bounds, counts):
        if c >= rank:
            if b == float("inf"):
                return lower
            return lower + (b - lower) * ((rank - below) / (c - below) if c > below else 1)
        lower, below = b, c
    return bounds[-1]


def gauge_sum(text, name):
    return sum(float(m.group(1)) for m in re.finditer(rf'^{name}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$', text, re.M))


def plot(json_path, png_path):
    """soak.png from soak.json; False when matplotlib is not importable here."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    r = json.loads(Path(json_path).read_text())
    samples, seconds = r["samples"], r["minutes"] * 60
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    t = [s["t_s"] / 60 for s in samples]
    for ax, key, label in zip(axes, ["rss_mb", "fds", "queue_depth", "p99_s"],
                              ["RSS (MB)", "open files", "queued", "p99 (s, per interval)"]):
        ax.plot(t, [s[key] if s[key] is not None else float("nan") for s in samples])
        ax.set_ylabel(label)
        ax.axvline(seconds / 5 / 60, color="grey", linestyle=":")
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.suptitle(f"spillwayd soak: busy fleet at 70 % of capacity, {r['minutes']:g} min")
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    print(f"plot: {png_path}")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--every", type=float, default=10)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--check-latency", action="store_true")
    ap.add_argument("--plot", nargs=2, metavar=("JSON", "PNG"), help="only draw PNG from an earlier run's JSON")
    args = ap.parse_args()
    if args.plot:
        sys.exit(0 if plot(*args.plot) else "no matplotlib here (python3-matplotlib, for /usr/bin/python3)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    build = Path(args.build)
    spillwayd, bench = str(build / "app" / "spillwayd"), str(build / "app" / "spillway-bench")
    procs = Procs()
    cap = busy_fleet.capacity_rps()
    seconds = args.minutes * 60
    samples = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            sims = busy_fleet.start_sims(procs, spillwayd)
            yaml = busy_fleet.gateway_yaml("degradation", sims)
            # Limits that decide every request and refuse none.
            yaml = yaml.replace("limits:\n", "limits:\n  per_key: {requests_per_second: 100000, tokens_per_minute: 1000000000}\n", 1)
            cfg = Path(workdir) / "soak.yaml"
            cfg.write_text(yaml)
            # A data directory, as a deployment has: the metric and usage
            # history go to the SQLite file (in memory, an hour of 1-second
            # points grows the heap for the first hour: a false slope), and
            # the disk cache tier is on.
            data = Path(workdir) / "data"
            data.mkdir()
            gw = procs.start([spillwayd, "--config", str(cfg), "--data-dir", str(data), "--control-listen", "none",
                              "--log-level", "error"])
            port = read_listen_port(gw)
            # The load: the busy fleet's tenants at 70 % of capacity, plus a
            # fifth of deterministic repeats the cache answers.
            scen = Path(workdir) / "soak-load.yaml"
            base = busy_fleet.scenario(f"http://127.0.0.1:{port}",
                                       [{"name": "soak", "duration_ms": int(seconds * 1000), "rate": round(0.7 * cap, 2)}], 5)
            repeat = {"name": "repeat", "weight": 25, "model": "busy", "priority": "standard",
                      "api_key": busy_fleet.key("alice"), "stream": False, "prompt_tokens_min": 50,
                      "prompt_tokens_max": 50, "deterministic": True, "distinct_prompts": 20}
            scen.write_text(base.replace("phases:", "  - " + json.dumps(repeat) + "\nphases:", 1))
            load = subprocess.Popen([bench, "--quiet", "--scenario", str(scen), "--json", str(out / "soak-load.json")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            t0 = time.time()
            prev = histogram(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode(),
                             "spillway_request_duration_seconds")
            while True:
                time.sleep(args.every)
                if load.poll() is not None:
                    break  # the load's drain is not the steady state
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
                cur = histogram(text, "spillway_request_duration_seconds")
                s = {"t_s": round(time.time() - t0, 1), **proc_status(gw.pid),
                     "queue_depth": gauge_sum(text, "spillway_queue_depth"),
                     "p50_s": quantile(prev, cur, 0.5), "p99_s": quantile(prev, cur, 0.99)}
                prev = cur
                samples.append(s)
                print(json.dumps(s), flush=True)
            if load.returncode != 0:
                sys.exit("the load generator failed: " + load.stderr.read())
        finally:
            procs.stop_all()
    warm = [s for s in samples if s["t_s"] >= seconds / 5]
    third = max(1, len(warm) // 3)
    first, last = warm[:third], warm[-third:]

    def med(rows, key):
        vals = [r[key] for r in rows if r[key] is not None]
        return statistics.median(vals) if vals else None

    result = {"minutes": args.minutes, "every_s": args.every, "rate_rps": round(0.7 * cap, 2), "samples": samples,
              "after_warmup": {
                  "rss_mb": [med(first, "rss_mb"), med(last, "rss_mb")],
                  "fds": [med(first, "fds"), med(last, "fds")],
                  "threads": [med(first, "threads"), med(last, "threads")],
                  "p99_s": [med(first, "p99_s"), med(last, "p99_s")]}}
    a = result["after_warmup"]
    result["rss_growth"] = round(a["rss_mb"][1] / a["rss_mb"][0] - 1, 4)
    result["fd_growth"] = a["fds"][1] - a["fds"][0]
    result["p99_drift"] = round(a["p99_s"][1] / a["p99_s"][0] - 1, 4) if a["p99_s"][0] else None
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    if not plot(out / "soak.json", out / "soak.png"):
        # The interpreter running this may not be Debian's (pyenv, a venv):
        # Debian's python3-matplotlib is for /usr/bin/python3.
        if Path("/usr/bin/python3").exists() and sys.executable != "/usr/bin/python3":
            subprocess.run(["/usr/bin/python3", __file__, "--plot", str(out / "soak.json"), str(out / "soak.png")])
    print(f"after warm-up: RSS {a['rss_mb'][0]:.1f} -> {a['rss_mb'][1]:.1f} MB ({100 * result['rss_growth']:+.1f} %), "
          f"open files {a['fds'][0]:g} -> {a['fds'][1]:g}, threads {a['threads'][0]:g} -> {a['threads'][1]:g}, "
          f"p99 {a['p99_s'][0]} -> {a['p99_s'][1]} s")
    failures = []
    if args.check:
        if result["rss_growth"] > 0.05:
            failures.append(f"RSS grew {100 * result['rss_growth']:.1f} % after warm-up (limit 5 %)")
        # A leak grows without bound; the pools and the load generator's
        # connections settle by steps when the machine is busy: both bounds.
        if result["fd_growth"] > 16 and result["fd_growth"] > 0.25 * a["fds"][0]:
            failures.append(f"open files grew by {result['fd_growth']:g} after warm-up (from {a['fds'][0]:g})")
    if args.check_latency and result["p99_drift"] is not None and result["p99_drift"] > 0.10:
        failures.append(f"p99 drifted {100 * result['p99_drift']:.1f} % (limit 10 %)")
    if failures:
        sys.exit("soak failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
