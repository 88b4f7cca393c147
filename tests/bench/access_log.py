"""The access log's cost (issue: see every request), standalone.

Two spillwayd in front of the same zero-latency upstream (nginx answering a
fixed completion), identical but for `access_log` (off, or JSON lines to a
file): 64 closed-loop clients (throughput) and one client (latency p50 and
p99), interleaved rounds with the order rotated, medians and ratios.

Usage: python3 tests/bench/access_log.py [--build build/release] [--rounds 7] [--seconds 3]
Writes bench-results/access-log.json and prints a markdown table.
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import ROOT, Bench, Procs, med, q, read_listen_port, start_nginx  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    b = Bench(args)
    procs = Procs()
    with tempfile.TemporaryDirectory() as workdir:
        try:
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            fast = start_nginx(procs, nginx, workdir, "fast", {"/v1/": "fast"}, 1)
            log_path = Path(workdir) / "access.log"
            urls = {}
            for name, extra in (("off", ""), ("on", f'access_log: {{path: "{log_path}"}}\n')):
                cfg = Path(workdir) / f"{name}.yaml"
                cfg.write_text(f"""server: {{listen: "127.0.0.1:0"}}
control: {{listen: none}}
upstream: {{max_idle_connections: 1024}}
{extra}backends:
  - {{name: fast, url: "http://127.0.0.1:{fast}", models: [bench], health_check: {{path: /health}}}}
""")
                gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "warn"])
                urls[name] = f"http://127.0.0.1:{read_listen_port(gw)}"
            thr = {k: [] for k in urls}
            p50 = {k: [] for k in urls}
            p99 = {k: [] for k in urls}
            order = list(urls)
            for rnd in range(args.rounds):
                for k in order[rnd % 2:] + order[:rnd % 2]:
                    r = b.load(f"accesslog-{k}-64", urls[k], "bench", args.seconds, concurrency=64)
                    thr[k].append(r["throughput"])
                    r = b.load(f"accesslog-{k}-1", urls[k], "bench", args.seconds, concurrency=1)
                    p50[k].append(q(r))
                    p99[k].append(q(r, p="p99_us"))
            lines = sum(1 for _ in open(log_path)) if log_path.exists() else 0
        finally:
            procs.stop_all()
    result = {"rounds": args.rounds, "seconds": args.seconds, "lines_written": lines,
              "throughput": {k: med(v) for k, v in thr.items()}, "p50_us": {k: med(v) for k, v in p50.items()},
              "p99_us": {k: med(v) for k, v in p99.items()}, "samples": {"throughput": thr, "p50_us": p50, "p99_us": p99}}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "access-log.json").write_text(json.dumps(result, indent=2))
    t, a, c = result["throughput"], result["p50_us"], result["p99_us"]
    ratio = t["on"] / t["off"] if t["off"] else 0
    print("| access log | req/s (64 clients) | p50 at 1 client | p99 at 1 client |")
    print("|---|---|---|---|")
    for k in ("off", "on"):
        print(f"| {k} | {t[k]:.0f} | {a[k]:.0f} us | {c[k]:.0f} us |")
    print(f"| on / off | {ratio:.3f} | {a['on'] - a['off']:+.0f} us | {c['on'] - c['off']:+.0f} us |")
    print(f"lines written: {lines}")
    print(f"throughput cost <= 3 %: {'met' if ratio >= 0.97 else 'not met'}; "
          f"added p99 <= 20 us: {'met' if c['on'] - c['off'] <= 20 else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
