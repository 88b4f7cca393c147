"""The busy fleet through one replica and through two (issue: replicas act as one gateway), standalone.

The busy-fleet benchmark's fleet (tests/bench/busy_fleet.py: three simulated
inference servers, 8 slots and 8 waiting places each, then 503) and its
load (five tenants, three classes, phases 0.5x to 3x capacity with a
burst), sent through nginx (round robin, keep-alive) to:

  one   one spillwayd with the default admission (the busy-fleet
        "admission" gateway) and a Redis for its limits: a fleet of one
  two   two such spillwayd sharing that Redis: a fleet of two, each
        learning the backends' limits on its own

in the same run, alternating which goes first per round. The question: do
two replicas keep clients out of 5xx and serve the fleet as well as one
(answered share and goodput within 5 %), or do they overrun the backends
together (each learning limits as if alone)? Also counted: the 503s the
simulators themselves answered ("server busy": a gateway sent more than a
backend could queue).

Usage: python3 tests/bench/two_replicas.py [--build build/release] [--rounds 1]
Writes bench-results/two-replicas.json and prints a markdown table.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import busy_fleet  # noqa: E402
from balancing import wait_idle  # noqa: E402
from run_bench import ROOT, Bench, Procs, free_port, med, read_listen_port, start_nginx, wait_port  # noqa: E402


def sim_busy_answers(port):
    """503s a simulator answered (its queue full), from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith('spillway_sim_requests_total{code="503"}'):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0, help="phase lengths x this (0.1 for a smoke run)")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every request was answered or refused with 429 (no 5xx) through both setups")
    args = ap.parse_args()
    b = Bench(args)
    procs = Procs()
    cap = busy_fleet.capacity_rps()
    phases = [{"name": "0.5x", "duration_ms": int(8000 * args.scale), "rate": round(0.5 * cap, 2)},
              {"name": "1x", "duration_ms": int(8000 * args.scale), "rate": round(1.0 * cap, 2)},
              {"name": "2x", "duration_ms": int(8000 * args.scale), "rate": round(2.0 * cap, 2)},
              {"name": "burst-4x", "duration_ms": int(2000 * args.scale), "rate": round(4.0 * cap, 2)},
              {"name": "3x", "duration_ms": int(12000 * args.scale), "rate": round(3.0 * cap, 2)}]
    total_s = sum(p["duration_ms"] for p in phases) / 1000
    runs = {"one": [], "two": []}
    with tempfile.TemporaryDirectory() as workdir:
        try:
            redis_port = free_port()
            procs.start([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(redis_port),
                         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir])
            wait_port(redis_port)
            sims = busy_fleet.start_sims(procs, b.spillwayd)
            yaml = busy_fleet.gateway_yaml("admission", sims).replace(
                "limits:\n", f'limits:\n  redis: {{address: "127.0.0.1:{redis_port}"}}\n', 1)
            yaml += "fleet: {heartbeat_ms: 500, replica_ttl_ms: 2000}\n"
            for rnd in range(args.rounds):
                order = ["one", "two"] if rnd % 2 == 0 else ["two", "one"]
                for setup in order:
                    wait_idle([p for _, p in sims])
                    # Fresh replicas (their own learned limits, keys of their own in Redis).
                    prefix = f"r{rnd}{setup}"
                    cfg = Path(workdir) / f"{prefix}.yaml"
                    cfg.write_text(yaml.replace("fleet: {", f'fleet: {{key_prefix: "spillway:{prefix}:", ', 1)
                                   .replace('redis: {address', f'redis: {{key_prefix: "spillway:{prefix}:rl:", address', 1))
                    gws = [procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "error"])
                           for _ in range(1 if setup == "one" else 2)]
                    ports = [read_listen_port(g) for g in gws]
                    front = start_nginx(procs, shutil.which("nginx") or "/usr/sbin/nginx", workdir,
                                        f"front-{prefix}", {"/": ports}, 1)
                    time.sleep(1.5)  # both replicas registered (heartbeat 0.5 s): each knows the other
                    busy_before = sum(sim_busy_answers(p) for _, p in sims)
                    b.runs += 1
                    path = b.out / f"{b.runs:03d}-two-replicas-{setup}.json"
                    scen = b.out / f"{b.runs:03d}-two-replicas-{setup}.yaml"
                    scen.write_text(busy_fleet.scenario(f"http://127.0.0.1:{front}", phases, 11 + rnd))
                    subprocess.run([b.bench, "--quiet", "--scenario", str(scen), "--json", str(path)], check=True,
                                   stdout=subprocess.DEVNULL)
                    r = json.loads(path.read_text())
                    o = busy_fleet.class_row(r["overall"], total_s, cap)
                    over_ok = over_deg = over_s = 0
                    for ph in r["phases"]:
                        if ph["name"] in ("2x", "burst-4x", "3x"):
                            over_ok += ph["report"]["ok"]
                            over_deg += ph["report"]["degraded"]
                            over_s += ph["duration_s"]
                    runs[setup].append({
                        "sent": o["sent"], "full": o["full"], "r429": o["r429"], "failed": o["failed"],
                        "answered_pct": o["answered_pct"], "mean_ms": o["mean_ms"], "p99_ms": o["p99_ms"],
                        "goodput_rps": round(o["full"] / r["duration_s"], 2),
                        "overload_goodput_pct_of_capacity": round(100 * (over_ok - over_deg) / over_s / cap, 1),
                        "sim_503": int(sum(sim_busy_answers(p) for _, p in sims) - busy_before)})
                    for g in gws:
                        g.terminate()
                        g.wait(timeout=60)
        finally:
            procs.stop_all()
    summary = {"capacity_rps": round(cap, 2), "phases": phases, "rounds": args.rounds, "runs": runs,
               "median": {s: {k: med([x[k] for x in v]) for k in v[0]} for s, v in runs.items()}}
    one, two = summary["median"]["one"], summary["median"]["two"]
    summary["two_to_one"] = {"answered": round(two["answered_pct"] / one["answered_pct"], 3),
                             "goodput": round(two["goodput_rps"] / one["goodput_rps"], 3)}
    (b.out / "two-replicas.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| setup | sent | full | 429 | 5xx/reset | answered % | mean ms (full) | p99 ms (full) "
             "| full answers/s | goodput under overload, % of capacity | 503s the simulators answered |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in ("one", "two"):
        m = summary["median"][s]
        lines.append(f"| {s} replica{'s' if s == 'two' else ''} | {m['sent']} | {m['full']} | {m['r429']} | {m['failed']} "
                     f"| {m['answered_pct']} | {m['mean_ms']} | {m['p99_ms']} | {m['goodput_rps']} "
                     f"| {m['overload_goodput_pct_of_capacity']} | {m['sim_503']} |")
    lines.append(f"\ntwo / one: answered {summary['two_to_one']['answered']}, full answers/s "
                 f"{summary['two_to_one']['goodput']}")
    print("\n".join(lines))
    if args.check:
        for setup, rs in runs.items():
            for r in rs:
                assert r["failed"] == 0, (setup, r)
                assert r["full"] + r["r429"] == r["sent"], (setup, r)
                assert r["full"] > 0, (setup, r)
        print("check: no 5xx, every request answered or refused with 429, through one replica and through two")


if __name__ == "__main__":
    main()
