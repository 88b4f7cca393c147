"""The queue's order inside a tenant's share: shortest_first vs fifo (issue: fast under overload), standalone.

Two simulated inference servers (4 sequence slots each, 8 waiting places,
then 503; 20 ms to the first token, 10 ms a token, answers as long as
max_tokens allows) behind two spillwayd that differ only in
`admission.queue_order` (fifo, shortest_first). One tenant (open access)
sends a mix the way chat traffic mixes: 70 % short requests (max_tokens 8,
about 0.1 s of work) and 30 % long ones (max_tokens 256, about 2.6 s), not
streamed, at 1.3x the fleet's capacity for 20 s. Objectives and queue
timeouts are set long (60 s) so nothing is shed, and each backend's
max_concurrency is its slot count, so requests wait in the gateway's queue
rather than in the servers' own (first come, first served) queues: the
comparison is the gateway's order alone. Rounds alternate the gateways
(order rotated); medians.

With --limits learned the backends have no max_concurrency: the gateway
learns each one's limit, reading the simulators' vllm:num_requests_waiting
(upstream.load_metrics), so the order counts only as far as the learned
limits keep requests out of the servers' own first-come queues.

Usage: python3 tests/bench/queue_order.py [--build build/release] [--rounds 2] [--seconds 20]
                                          [--limits configured|learned]
Writes bench-results/queue-order.json (queue-order-learned.json) and prints a markdown table.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import ROOT, Bench, Procs, med, read_listen_port  # noqa: E402
from balancing import start_sim, wait_idle  # noqa: E402

SIMS, SLOTS, WAITING = 2, 4, 8
PREFILL_MS, ITL_MS = 20, 10
MIX = [("short", 7, 8), ("long", 3, 256)]  # name, weight, max_tokens


def capacity_rps():
    total = sum(w for _, w, _ in MIX)
    mean_s = sum(w / total * (PREFILL_MS + ITL_MS * n) / 1000 for _, w, n in MIX)
    return SIMS * SLOTS / mean_s


def scenario(target, rate, seconds):
    lines = [f"target: {target}", "max_connections: 4096", "seed: 7", "drain_timeout_ms: 180000", "threads: 1",
             "classes:"]
    for name, weight, max_tokens in MIX:
        lines.append("  - " + json.dumps({"name": name, "weight": weight, "model": "mix", "max_tokens": max_tokens,
                                           "prompt_tokens_min": 50, "prompt_tokens_max": 150}))
    lines += ["phases:", "  - " + json.dumps({"name": "1.3x", "duration_ms": int(seconds * 1000), "rate": rate})]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--limits", choices=["configured", "learned"], default="configured",
                    help="configured: each backend's max_concurrency is its slot count; learned: no max_concurrency, "
                         "the gateway learns each backend's limit, reading the simulators' vllm:num_requests_waiting "
                         "(upstream.load_metrics)")
    args = ap.parse_args()
    b = Bench(args)
    procs = Procs()
    rate = round(1.3 * capacity_rps(), 2)
    results = {"fifo": [], "shortest_first": []}
    with tempfile.TemporaryDirectory() as workdir:
        try:
            sims = []
            for i in range(SIMS):
                _, port = start_sim(procs, b.spillwayd, [
                    "--profile", "default", "--model", "mix", "--prefill-base-ms", str(PREFILL_MS),
                    "--prefill-per-token-us", "0", "--inter-token-ms", str(ITL_MS),
                    "--max-num-seqs", str(SLOTS), "--max-waiting", str(WAITING),
                    "--min-output-tokens", "256", "--max-output-tokens", "256"])
                sims.append(port)
            urls = {}
            for order in results:
                cfg = Path(workdir) / f"{order}.yaml"
                cfg.write_text("\n".join([
                    'server: {listen: "127.0.0.1:0", header_timeout_ms: 600000}', "control: {listen: none}",
                    "upstream: {max_idle_connections: 1024" +
                    (", load_metrics: {path: /metrics, interval_ms: 250}" if args.limits == "learned" else "") + "}",
                    "admission:", f"  queue_order: {order}",
                    "  critical: {queue_timeout_ms: 60000, objective_ms: 60000}",
                    "  standard: {queue_timeout_ms: 60000, objective_ms: 60000}",
                    "  sheddable: {queue_timeout_ms: 60000, objective_ms: 60000}",
                    "backends:"] + [
                    f'  - {{name: sim{i}, url: "http://127.0.0.1:{p}", models: [mix], '
                    + (f'max_concurrency: {SLOTS}, ' if args.limits == "configured" else "")
                    + 'health_check: {path: /healthz}}'
                    for i, p in enumerate(sims)]) + "\n")
                gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "error"])
                urls[order] = f"http://127.0.0.1:{read_listen_port(gw)}"
            order_list = list(results)
            for rnd in range(args.rounds):
                for order in order_list[rnd % 2:] + order_list[:rnd % 2]:
                    wait_idle(sims)
                    b.runs += 1
                    path = b.out / f"{b.runs:03d}-queue-order-{order}.json"
                    scen = b.out / f"{b.runs:03d}-queue-order-{order}.yaml"
                    scen.write_text(scenario(urls[order], rate, args.seconds))
                    subprocess.run([b.bench, "--quiet", "--scenario", str(scen), "--json", str(path)], check=True,
                                   stdout=subprocess.DEVNULL)
                    results[order].append(json.loads(path.read_text()))
        finally:
            procs.stop_all()

    def row(runs, cls=None):
        def pick(r):
            return r["overall"] if cls is None else next(c for c in r["classes"] if c["name"] == cls)
        lat = [pick(r)["full_latency"] for r in runs]
        return {"mean_ms": med([x["mean_us"] / 1000 for x in lat]), "p50_ms": med([x["p50_us"] / 1000 for x in lat]),
                "p99_ms": med([x["p99_us"] / 1000 for x in lat]), "max_ms": med([x["max_us"] / 1000 for x in lat]),
                "full": med([pick(r)["ok"] - pick(r)["degraded"] for r in runs]),
                "failed": med([sum(pick(r)["errors"].values()) for r in runs])}

    summary = {"capacity_rps": round(capacity_rps(), 2), "rate_rps": rate, "rounds": args.rounds, "limits": args.limits,
               "seconds": args.seconds, "mix": MIX,
               "orders": {o: {"all": row(r), **{name: row(r, name) for name, _, _ in MIX}} for o, r in results.items()}}
    f, s = summary["orders"]["fifo"], summary["orders"]["shortest_first"]
    summary["mean_ratio"] = round(s["all"]["mean_ms"] / f["all"]["mean_ms"], 3) if f["all"]["mean_ms"] else 0
    summary["p99_ratio"] = round(s["all"]["p99_ms"] / f["all"]["p99_ms"], 3) if f["all"]["p99_ms"] else 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    name = "queue-order.json" if args.limits == "configured" else "queue-order-learned.json"
    (Path(args.out) / name).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"capacity {summary['capacity_rps']} req/s, load {rate} req/s for {args.seconds:g} s, "
          f"{args.rounds} rounds each (medians)")
    print("| order | requests | mean | p50 | p99 | max | short: mean / p99 | long: mean / p99 | failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for o, v in summary["orders"].items():
        a = v["all"]
        print(f"| {o} | {a['full']:.0f} | {a['mean_ms']:.0f} ms | {a['p50_ms']:.0f} ms | {a['p99_ms']:.0f} ms "
              f"| {a['max_ms']:.0f} ms | {v['short']['mean_ms']:.0f} / {v['short']['p99_ms']:.0f} ms "
              f"| {v['long']['mean_ms']:.0f} / {v['long']['p99_ms']:.0f} ms | {a['failed']:.0f} |")
    print(f"shortest_first / fifo: mean {summary['mean_ratio']}, p99 {summary['p99_ratio']} "
          f"(targets: mean <= 0.6, p99 <= 1.2: "
          f"{'met' if summary['mean_ratio'] <= 0.6 and summary['p99_ratio'] <= 1.2 else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
