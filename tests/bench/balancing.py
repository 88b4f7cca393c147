"""Balancing benchmarks (issue: request pipeline, load-aware balancing and
upstream resilience), run by run_bench.py:

  mixed      the article's mixed workload (long ~2.3 s, short ~0.8 s answers,
             streamed) on (a) three identical simulators and (b) two plus one
             three times slower, at 60 / 80 / 95 % of the fleet's capacity,
             each policy side by side with round robin: per-backend busy share
             (mean running sequences / slots, sampled from each simulator's
             /metrics), latency and TTFT p50/p99, errors, retries
  failover   three identical simulators at 60 %; halfway through, one starts
             failing every request (HTTP 500): client-visible errors
  prefix     8 groups of requests sharing a 2,000-token system prompt, on 4
             simulators whose prefix (KV) cache holds ~2 groups each: TTFT and
             load spread per policy
  pick       the policies' pick cost (spillway-bench pick)

Every simulator is a separate `spillwayd sim` process and every policy gets
its own spillwayd in front of the same simulators, started after the
previous run drained; everything is on loopback.
"""
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

# The mixed workload: streamed, 20 ms a token on a fast simulator.
SHORT_TOKENS, LONG_TOKENS, ITL_MS, SLOTS = 40, 115, 20, 8
SERVICE_S = (SHORT_TOKENS + LONG_TOKENS) / 2 * ITL_MS / 1000 + 0.02  # mean, fast backend


def start_sim(procs, spillwayd, args):
    from run_bench import read_listen_port
    p = procs.start([spillwayd, "sim", "--listen", "127.0.0.1:0", "--threads", "1", "--log-level", "warn"] + args)
    return p, read_listen_port(p)


def metric(port, name):
    """Sum of a metric family's samples on a simulator's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class BusySampler:
    """Samples each simulator's running sequences every 100 ms while a run lasts (with the time)."""

    def __init__(self, ports):
        self.ports, self.samples, self.stop = ports, {p: [] for p in ports}, threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            for p in self.ports:
                try:
                    self.samples[p].append((time.time(), metric(p, "spillway_sim_running_sequences")))
                except OSError:
                    pass
            self.stop.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def busy_share(self, port, slots, start=0.0, end=float("inf")):
        """Mean running sequences / slots of one simulator, over [start, end] (time.time())."""
        s = [v for t, v in self.samples[port] if start <= t <= end]
        return sum(s) / len(s) / slots if s else 0.0


def wait_idle(ports, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if all(metric(p, "spillway_sim_running_sequences") + metric(p, "spillway_sim_waiting_requests") == 0
               for p in ports):
            return
        time.sleep(0.2)


def gateway(procs, spillwayd, workdir, name, backends, policy, extra=""):
    # latency_weighted's slow threshold is the operator's call (the article's
    # "configured threshold"): here 40 ms a token, between the fast
    # simulators' 20 and the slow one's 60. Other policies ignore it.
    """A spillwayd over `backends` [(name, port)] with one pool of model `name`."""
    from run_bench import read_listen_port
    # Long keep-alive: the load generator does not retry a request on a
    # pooled connection the server closed while idle.
    lines = [f'server: {{listen: "127.0.0.1:0", header_timeout_ms: 600000}}',
             f"upstream: {{balancing: {{policy: {policy}, slow_threshold_ms: 40}}, max_idle_connections: 1024{extra}}}",
             "control: {listen: none}", "backends:"]
    for bname, port in backends:
        lines.append(f'  - {{name: {bname}, url: "http://127.0.0.1:{port}", models: [{name}], '
                     f'health_check: {{path: /healthz}}}}')
    cfg = Path(workdir) / f"gw-{name}-{policy}.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    p = procs.start([spillwayd, "--config", str(cfg), "--log-level", "error"])
    return p, read_listen_port(p)


def gw_served(port, model):
    """Requests each backend answered, from the gateway's spillway_requests_total."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("spillway_requests_total{") and f'model="{model}"' in line:
            backend = line.split('backend="', 1)[1].split('"', 1)[0]
            if backend:
                out[backend] = out.get(backend, 0) + float(line.rsplit(" ", 1)[1])
    return out


def gw_metric(port, name):
    try:
        return metric(port, name)
    except OSError:
        return 0.0


def run_scenario(b, name, target, classes, rate, seconds, smoke):
    """One open-loop phase at `rate` through spillway-bench; returns the report."""
    b.runs += 1
    path = b.out / f"{b.runs:03d}-{name}.json"
    scen = Path(b.out) / f"{b.runs:03d}-{name}.yaml"
    lines = [f"target: {target}", "max_connections: 4096", "seed: 7", "drain_timeout_ms: 120000", "classes:"]
    for c in classes:
        lines.append("  - " + json.dumps(c))
    lines += ["phases:", "  - " + json.dumps({"name": "steady", "duration_ms": int(seconds * 1000), "rate": rate})]
    scen.write_text("\n".join(lines) + "\n")
    subprocess.run([b.bench, "--quiet", "--scenario", str(scen), "--json", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())


def summarize(report):
    o = report["overall"]
    out = {"sent": o["sent"], "ok": o["ok"], "errors": sum(o["errors"].values()), "errors_by_kind": o["errors"],
           "mean_ms": o["latency"]["mean_us"] / 1000,
           "p50_ms": o["latency"]["p50_us"] / 1000, "p99_ms": o["latency"]["p99_us"] / 1000,
           "ttft_p50_ms": o["ttft"]["p50_us"] / 1000, "ttft_p99_ms": o["ttft"]["p99_us"] / 1000}
    for c in report.get("classes", []):
        out[f"{c['name']}_p99_ms"] = c["latency"]["p99_us"] / 1000
    return out


def mixed(b, procs, workdir, args):
    smoke = args.smoke
    fleets = {"identical": [1, 1, 1], "one_3x_slower": [1, 1, 3]}
    loads = [0.8] if smoke else [0.6, 0.8, 0.95]
    policies = ["round_robin", "least_outstanding"] if smoke else \
        ["round_robin", "weighted_random", "latency_weighted", "least_outstanding"]
    seconds = 2 if smoke else 20
    classes = [{"name": "short", "weight": 1, "model": "mixed", "stream": True, "max_tokens": SHORT_TOKENS,
                "prompt_tokens_min": 50, "prompt_tokens_max": 50, "expected_itl_ms": 0},
               {"name": "long", "weight": 1, "model": "mixed", "stream": True, "max_tokens": LONG_TOKENS,
                "prompt_tokens_min": 50, "prompt_tokens_max": 50, "expected_itl_ms": 0}]
    out = {"definition": {"short_tokens": SHORT_TOKENS, "long_tokens": LONG_TOKENS, "itl_ms": ITL_MS,
                          "slots": SLOTS, "seconds": seconds}, "fleets": {}}
    for fleet, slowness in fleets.items():
        if smoke and fleet != "one_3x_slower":
            continue
        sims = []
        for i, k in enumerate(slowness):
            _, port = start_sim(procs, b.spillwayd, [
                "--profile", "instant", "--model", "mixed", "--inter-token-ms", str(ITL_MS * k),
                "--prefill-base-ms", "20", "--max-num-seqs", str(SLOTS), "--max-waiting", "64",
                "--min-output-tokens", "1000", "--max-output-tokens", "1000"])
            sims.append((f"sim{i}{'-slow' if k > 1 else ''}", port))
        capacity = sum(SLOTS / (SERVICE_S * k) for k in slowness)  # requests per second the fleet sustains
        rows = {}
        for load in loads:
            for policy in policies:
                wait_idle([p for _, p in sims])
                gw, gw_port = gateway(procs, b.spillwayd, workdir, "mixed", sims, policy)
                with BusySampler([p for _, p in sims]) as sampler:
                    r = run_scenario(b, f"mixed-{fleet}-{int(load * 100)}-{policy}", f"http://127.0.0.1:{gw_port}",
                                     classes, capacity * load, seconds, smoke)
                row = summarize(r)
                row["retries"] = gw_metric(gw_port, "spillway_upstream_retries_total")
                row["busy_share"] = {name: round(sampler.busy_share(port, SLOTS), 3) for name, port in sims}
                shares = list(row["busy_share"].values())
                row["busy_spread_pp"] = round((max(shares) - min(shares)) * 100, 1)
                rows.setdefault(str(int(load * 100)), {})[policy] = row
                gw.terminate()
                gw.wait(timeout=30)
        out["fleets"][fleet] = {"capacity_rps": round(capacity, 2), "loads": rows}
    return out


def failover(b, procs, workdir, args):
    smoke = args.smoke
    seconds = 2 if smoke else 20
    sims = []
    for i in range(3):
        _, port = start_sim(procs, b.spillwayd, [
            "--profile", "instant", "--model", "fo", "--inter-token-ms", "5", "--prefill-base-ms", "10",
            "--max-num-seqs", "16", "--max-waiting", "64", "--min-output-tokens", "1000",
            "--max-output-tokens", "1000", "--failure-kind", "http_500"])
        sims.append((f"sim{i}", port))
    capacity = 3 * 16 / (0.01 + 20 * 0.005)
    classes = [{"name": "chat", "model": "fo", "max_tokens": 20, "prompt_tokens_min": 20, "prompt_tokens_max": 20}]
    out = {"definition": {"backends": 3, "rate_rps": round(capacity * 0.6, 1), "seconds": seconds,
                          "failure": "sim0 answers every request with HTTP 500 from half-time on"}, "policies": {}}
    for policy in (["least_outstanding"] if smoke else ["round_robin", "least_outstanding", "latency_weighted"]):
        wait_idle([p for _, p in sims])
        for _, port in sims:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/sim/failures?rate=0", method="POST"))
        gw, gw_port = gateway(procs, b.spillwayd, workdir, "fo", sims, policy)
        timer = threading.Timer(seconds / 2, lambda: urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{sims[0][1]}/sim/failures?rate=1", method="POST")))
        timer.start()
        r = run_scenario(b, f"failover-{policy}", f"http://127.0.0.1:{gw_port}", classes, capacity * 0.6, seconds,
                         smoke)
        timer.join()
        row = summarize(r)
        row["error_rate"] = row["errors"] / row["sent"] if row["sent"] else 0
        row["retries"] = gw_metric(gw_port, "spillway_upstream_retries_total")
        row["ejections"] = gw_metric(gw_port, "spillway_backend_ejections")
        out["policies"][policy] = row
        gw.terminate()
        gw.wait(timeout=30)
    for _, port in sims:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/sim/failures?rate=0", method="POST"))
    return out


def prefix(b, procs, workdir, args):
    smoke = args.smoke
    seconds = 2 if smoke else 20
    shared, unique, groups = 2000, 40, 8
    # A group's prefix is ~157 blocks of 16 simulator tokens (64 bytes; the
    # words are 5 bytes with their space): each cache holds about 2.5 groups,
    # so affinity can keep every group warm and spreading cannot.
    cache_blocks = 400
    sims = []
    for i in range(4):
        _, port = start_sim(procs, b.spillwayd, [
            "--profile", "instant", "--model", "prefix", "--inter-token-ms", "10", "--prefill-base-ms", "10",
            "--prefill-per-token-us", "200", "--max-num-seqs", "8", "--max-waiting", "64",
            "--min-output-tokens", "1000", "--max-output-tokens", "1000",
            "--prefix-block-tokens", "16", "--prefix-cache-blocks", str(cache_blocks)])
        sims.append((f"sim{i}", port))
    rate = 30
    classes = [{"name": "chat", "model": "prefix", "stream": True, "max_tokens": 16,
                "prompt_tokens_min": shared + unique, "prompt_tokens_max": shared + unique,
                "prefix_groups": groups, "shared_prefix_tokens": shared}]
    out = {"definition": {"groups": groups, "shared_prefix_tokens": shared, "unique_tokens": unique,
                          "backends": 4, "cache_blocks_per_backend": cache_blocks, "block_tokens": 16,
                          "prefill_us_per_token": 200, "rate_rps": rate, "seconds": seconds}, "policies": {}}
    for policy in (["least_outstanding", "prefix_affinity"] if smoke else
                   ["round_robin", "least_outstanding", "prefix_affinity"]):
        wait_idle([p for _, p in sims])
        hits_before = sum(metric(p, "spillway_sim_prefix_cache_hit_tokens_total") for _, p in sims)
        gw, gw_port = gateway(procs, b.spillwayd, workdir, "prefix", sims, policy)
        r = run_scenario(b, f"prefix-{policy}", f"http://127.0.0.1:{gw_port}", classes, rate, seconds, smoke)
        row = summarize(r)
        served = {n: gw_served(gw_port, "prefix").get(n, 0) for n, _ in sims}
        mean = sum(served.values()) / len(served)
        row["served"] = served
        row["max_over_mean"] = round(max(served.values()) / mean, 2) if mean else 0
        hits = sum(metric(p, "spillway_sim_prefix_cache_hit_tokens_total") for _, p in sims) - hits_before
        row["cached_prompt_share"] = round(hits / max(1, row["ok"] * (shared + unique)), 3)
        out["policies"][policy] = row
        gw.terminate()
        gw.wait(timeout=30)
    return out


def pick(b, args):
    path = b.out / "pick.json"
    subprocess.run([b.bench, "pick", "--json", str(path), "--iterations", "20000" if args.smoke else "200000"],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())["pick_ns"]


def run_all(b, procs, workdir, args):
    return {"pick_ns": pick(b, args), "mixed": mixed(b, procs, workdir, args),
            "failover": failover(b, procs, workdir, args), "prefix": prefix(b, procs, workdir, args)}


def markdown(s):
    L = ["", "## Balancing: the article's mixed workload", "",
         f"Streams of {SHORT_TOKENS} or {LONG_TOKENS} tokens (0.8 s / 2.3 s at {ITL_MS} ms a token), half each; "
         f"simulators with {SLOTS} slots and a 64-deep queue (503 when full). Busy share = mean running / slots; "
         "latency_weighted with slow_threshold_ms 40.", ""]
    for fleet, f in s["mixed"]["fleets"].items():
        L += [f"### {fleet} (capacity {f['capacity_rps']} req/s)", "",
              "| load | policy | busy share per backend | spread | mean | p99 | short p99 | long p99 | TTFT p50 | "
              "TTFT p99 | p99 / RR | errors | retries |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for load, rows in f["loads"].items():
            rr = rows.get("round_robin", {}).get("p99_ms", 0)
            for policy, r in rows.items():
                shares = " / ".join(f"{v * 100:.0f}%" for v in r["busy_share"].values())
                ratio = f"{r['p99_ms'] / rr:.2f}" if rr else "–"
                L.append(f"| {load}% | {policy} | {shares} | {r['busy_spread_pp']} pp | {r['mean_ms']:.0f} ms | "
                         f"{r['p99_ms']:.0f} ms | {r.get('short_p99_ms', 0):.0f} ms | {r.get('long_p99_ms', 0):.0f} ms | "
                         f"{r['ttft_p50_ms']:.0f} ms | {r['ttft_p99_ms']:.0f} ms | {ratio} | "
                         f"{r['errors']} / {r['sent']} | {r['retries']:.0f} |")
        L.append("")
    fo = s["failover"]
    L += ["## Balancing: one backend starts failing halfway", "", fo["definition"]["failure"] +
          f"; {fo['definition']['rate_rps']} req/s for {fo['definition']['seconds']} s.", "",
          "| policy | sent | client errors | error rate | retries | ejections | p99 |", "|---|---|---|---|---|---|---|"]
    for policy, r in fo["policies"].items():
        L.append(f"| {policy} | {r['sent']} | {r['errors']} | {r['error_rate'] * 100:.3f} % | {r['retries']:.0f} | "
                 f"{r['ejections']:.0f} | {r['p99_ms']:.0f} ms |")
    px = s["prefix"]
    d = px["definition"]
    L += ["", "## Balancing: shared prompt prefixes", "",
          f"{d['groups']} groups sharing a {d['shared_prefix_tokens']}-token system prompt (+{d['unique_tokens']} unique), "
          f"{d['rate_rps']} req/s on {d['backends']} simulators whose prefix cache holds {d['cache_blocks_per_backend']} "
          f"blocks of {d['block_tokens']} tokens; prefill {d['prefill_us_per_token']} µs a token.", "",
          "| policy | TTFT p50 | TTFT p99 | cached prompt share | requests per backend | max / mean | errors |",
          "|---|---|---|---|---|---|---|"]
    for policy, r in px["policies"].items():
        served = " / ".join(f"{v:.0f}" for v in r["served"].values())
        L.append(f"| {policy} | {r['ttft_p50_ms']:.0f} ms | {r['ttft_p99_ms']:.0f} ms | "
                 f"{r['cached_prompt_share'] * 100:.0f} % | {served} | {r['max_over_mean']} | {r['errors']} |")
    L += ["", "## Balancing: pick cost (ns per pick + release, one thread)", "", "| policy | 4 | 16 | 64 |",
          "|---|---|---|---|"]
    for policy, row in s["pick_ns"].items():
        L.append(f"| {policy} | {row['4']:.0f} | {row['16']:.0f} | {row['64']:.0f} |")
    return "\n".join(L) + "\n"


def check_sane(s):
    for f in s["mixed"]["fleets"].values():
        for rows in f["loads"].values():
            for r in rows.values():
                assert r["sent"] > 0 and r["ok"] > 0, r
                assert all(0 <= v <= 1.01 for v in r["busy_share"].values()), r
    for r in s["failover"]["policies"].values():
        assert r["sent"] > 0, r
    for r in s["prefix"]["policies"].values():
        assert r["ok"] > 0, r
    for row in s["pick_ns"].values():
        assert all(v > 0 for v in row.values()), row
