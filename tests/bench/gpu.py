"""The GPU benchmark (issue: MIG-aware GPU scheduling), run by run_bench.py.

The article's measure: split an A100 into 7 MIG instances so that one long
request cannot block the whole GPU. Simulated, with no GPU: a declared
A100-80GB whose inference servers are `spillwayd sim` workers launched by
spillwayd's own launcher (gpu.workers), under the same load, two ways:

  unpartitioned  MIG off: one server on the whole GPU, 14 sequence slots
  7x1g           the article's layout (-cgi 19,19,19,19,19,19,19): one server
                 per 1g.10gb instance, 2 slots each (14 in all), with
                 placement: long requests (max_tokens >= 200) confined to
                 instances 1-6, so instance 0 is always free of them

Simulation model (stated, not measured on a GPU): a 1g instance has 1/7 of
the GPU's sequence slots and decodes at the same time per token (10 ms);
prefill 20 ms. This is the capacity-proportional model: it holds where the
GPU is batch-limited (KV memory caps the batch), not where decode is bound
by reading the weights (then seven replicas cost seven times the reads and
MIG loses throughput; see docs/gpu.md).

Load, open loop, 60 s (4 s with 300-token long requests in the smoke run), the same seed for both:
  ops     critical   short: 16 tokens, non-streamed (key with class critical)
  batch   sheddable  long: 1,000 tokens (10 s), streamed
The long requests alone ask for more than the 14 slots (the GPU is past its
capacity), so in the unpartitioned case every slot is held by a long request
most of the time and a critical request waits for one to finish.

Reported: critical p99 latency and throughput (output tokens per second of
answers delivered) in each case, and their ratios.
Targets: critical p99 (7x1g) <= 0.3 x unpartitioned, at <= 10 % less throughput.
"""
import hashlib
import json
import subprocess
import time
import urllib.request
from pathlib import Path

ITL_MS, PREFILL_MS = 10, 20
SHORT_TOKENS, LONG_TOKENS = 16, 1000
CRIT_RATE, LONG_RATE = 6.0, 2.5
KEY = "sk-bench-ops"


def gateway_yaml(kind, spillwayd, long_tokens):
    slots = 14 if kind == "unpartitioned" else 2
    worker = (f"{spillwayd} sim --listen 127.0.0.1:{{port}} --model gpu --threads 1 --log-level warn "
              f"--profile instant --inter-token-ms {ITL_MS} --prefill-base-ms {PREFILL_MS} "
              f"--max-num-seqs {slots} --max-waiting 64 --min-output-tokens {long_tokens} "
              f"--max-output-tokens {long_tokens}")
    lines = ['server: {listen: "127.0.0.1:0", header_timeout_ms: 600000}',
             "control: {listen: none}",
             "upstream: {max_idle_connections: 1024, first_byte_timeout_ms: 600000}",
             "admission:",
             "  critical: {queue_timeout_ms: 30000}",
             "  sheddable: {queue_timeout_ms: 15000}",
             "limits:",
             "  keys:",
             f"    - {{name: ops, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, priority: critical}}",
             "gpu:",
             "  inventory: declared",
             "  gpus:"]
    if kind == "unpartitioned":
        lines.append("    - {model: A100-80GB}")
    else:
        lines.append("    - {model: A100-80GB, mig: [1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb]}")
        lines += ["  placement:",
                  "    long_max_tokens: 200",
                  "    long: [" + ", ".join(f"MIG-declared-0-{i}" for i in range(1, 7)) + "]"]
    lines += ["  workers:",
              f"    - name: {kind.replace('x', 'x')}",
              f"      command: \"{worker}\"",
              "      models: [gpu]",
              "      health_path: /healthz",
              f"      max_concurrency: {slots}",
              "      start_timeout_ms: 30000"]
    return "\n".join(lines) + "\n"


def scenario(target, seconds, seed, long_tokens):
    total = CRIT_RATE + LONG_RATE
    classes = [
        {"name": "ops", "weight": int(100 * CRIT_RATE / total), "model": "gpu", "api_key": KEY, "max_tokens": SHORT_TOKENS},
        {"name": "batch", "weight": int(100 * LONG_RATE / total), "model": "gpu", "priority": "sheddable",
         "max_tokens": long_tokens, "stream": True},
    ]
    lines = [f"target: {target}", "max_connections: 4096", f"seed: {seed}", "drain_timeout_ms: 60000", "threads: 1",
             "classes:"] + ["  - " + json.dumps(c) for c in classes]
    lines += ["phases:", "  - " + json.dumps({"name": "load", "duration_ms": int(seconds * 1000), "rate": total})]
    return "\n".join(lines) + "\n"


def wait_workers(port, n, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            for line in text.splitlines():
                if line.startswith('spillway_gpu_workers{state="healthy"}') and float(line.split()[-1]) >= n:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("workers did not become healthy")


def run_all(b, procs, workdir, args):
    from run_bench import read_listen_port
    # The smoke run (CTest) only checks that it all works: 4 s, 3 s long requests.
    seconds, long_tokens = (4, 300) if args.smoke else (60, LONG_TOKENS)
    out = {"definition": {"itl_ms": ITL_MS, "prefill_ms": PREFILL_MS, "short_tokens": SHORT_TOKENS,
                          "long_tokens": long_tokens, "critical_rate": CRIT_RATE, "long_rate": LONG_RATE,
                          "seconds": seconds, "slots": 14},
           "runs": {}}
    for kind in ["unpartitioned", "7x1g"]:
        cfg = Path(workdir) / f"gpu-{kind}.yaml"
        cfg.write_text(gateway_yaml(kind, b.spillwayd, long_tokens))
        gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "error"])
        port = read_listen_port(gw)
        wait_workers(port, 1 if kind == "unpartitioned" else 7)
        b.runs += 1
        path = b.out / f"{b.runs:03d}-gpu-{kind}.json"
        scen = b.out / f"{b.runs:03d}-gpu-{kind}.yaml"
        scen.write_text(scenario(f"http://127.0.0.1:{port}", seconds, 13, long_tokens))
        subprocess.run([b.bench, "--quiet", "--scenario", str(scen), "--json", str(path)], check=True,
                       stdout=subprocess.DEVNULL)
        r = json.loads(path.read_text())
        row = {}
        for c in r["classes"]:
            errors = c["errors"]
            row[c["name"]] = {"sent": c["sent"], "ok": c["ok"], "r429": errors.get("429", 0),
                              "failed": sum(v for k, v in errors.items() if k != "429"),
                              "p50_ms": round(c["latency"]["p50_us"] / 1000, 1),
                              "p99_ms": round(c["latency"]["p99_us"] / 1000, 1),
                              "output_tokens": c["output_tokens"]}
        tokens = sum(v["output_tokens"] for v in row.values())
        out["runs"][kind] = {"classes": row, "output_tokens": tokens, "tokens_per_s": round(tokens / r["duration_s"], 1),
                             "duration_s": round(r["duration_s"], 2)}
        gw.terminate()
        gw.wait(timeout=30)
    u, p = out["runs"]["unpartitioned"], out["runs"]["7x1g"]
    out["critical_p99_ratio"] = round(p["classes"]["ops"]["p99_ms"] / max(0.001, u["classes"]["ops"]["p99_ms"]), 3)
    out["throughput_loss_pct"] = round(100 * (1 - p["tokens_per_s"] / max(0.001, u["tokens_per_s"])), 1)
    out["targets"] = {"critical_p99_ratio_le_0.3": out["critical_p99_ratio"] <= 0.3,
                      "throughput_loss_le_10pct": out["throughput_loss_pct"] <= 10}
    out["planner"] = planner_speed(b, args)
    return out


def planner_speed(b, args):
    """spillwayd gpu plan on 8 GPUs and 4 classes: the planner's own time (it prints it)."""
    cmd = [b.spillwayd, "gpu", "plan", "--gpu", "H100-80GBx8", "--demand", "chat:critical:10:0.3",
           "--demand", "code:standard:20:0.3", "--demand", "rag:standard:35:0.2", "--demand", "batch:sheddable:10:0.2"]
    times = []
    for _ in range(1 if args.smoke else 5):
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        line = [l for l in text.splitlines() if l.startswith("(planned in ")][0]
        times.append(float(line.split()[2]))
    times.sort()
    return {"case": "8 x H100-80GB, 4 demands", "runs_ms": times, "median_ms": times[len(times) // 2]}


def markdown(s):
    d = s["definition"]
    lines = ["", "## GPU: the article's 7 x 1g layout vs the unpartitioned GPU (simulated)", "",
             f"A100-80GB, 14 sequence slots in all; {d['itl_ms']} ms per token; critical: {d['critical_rate']}/s "
             f"x {d['short_tokens']} tokens; sheddable: {d['long_rate']}/s x {d['long_tokens']} tokens "
             f"(more than the GPU serves); {d['seconds']} s.", "",
             "| layout | critical ok | critical p50 ms | critical p99 ms | long ok / 429 | output tokens/s |",
             "|---|---|---|---|---|---|"]
    for kind, r in s["runs"].items():
        c, l = r["classes"]["ops"], r["classes"]["batch"]
        lines.append(f"| {kind} | {c['ok']}/{c['sent']} | {c['p50_ms']} | {c['p99_ms']} | {l['ok']} / {l['r429']} "
                     f"| {r['tokens_per_s']} |")
    lines += ["", f"Critical p99, 7x1g / unpartitioned: **{s['critical_p99_ratio']}** (target <= 0.3: "
              f"{'met' if s['targets']['critical_p99_ratio_le_0.3'] else 'not met'}); throughput loss "
              f"**{s['throughput_loss_pct']} %** (target <= 10 %: "
              f"{'met' if s['targets']['throughput_loss_le_10pct'] else 'not met'}).", "",
              f"Planner, {s['planner']['case']}: median {s['planner']['median_ms']} ms over "
              f"{len(s['planner']['runs_ms'])} runs (target <= 100 ms).", ""]
    return "\n".join(lines)


def check_sane(s):
    for kind, r in s["runs"].items():
        for name, c in r["classes"].items():
            assert c["sent"] > 0, (kind, name)
            assert c["ok"] + c["r429"] + c["failed"] <= c["sent"], (kind, name, c)
        assert r["classes"]["ops"]["ok"] > 0, kind
    assert s["planner"]["median_ms"] > 0
