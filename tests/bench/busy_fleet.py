"""The busy-fleet benchmark (issue: admission control), run by run_bench.py.

Three simulated inference servers with 8 sequence slots and room for 8
waiting requests each answer 503 "server busy" beyond that, like a vLLM or
TGI deployment with a bounded queue. One load, in phases from 0.5x to 3x the
fleet's capacity with a burst, from five tenants in three priority classes:

  ops      critical   10 %  non-streamed, 100-300 prompt tokens
  alice    standard   25 %  streamed, 100-300 prompt tokens
  bob      standard   20 %  streamed, 100-300 prompt tokens
  greedy   standard   20 %  streamed, 2,000-3,000 prompt tokens (10x the tokens)
  batch    sheddable  25 %  streamed, 100-300 prompt tokens

is sent, in the same run and to the same simulators, through four gateways:

  unprotected    spillwayd with admission off, round robin, no retries: a
                 plain proxy (what nginx round robin does), the baseline
  timeouts       admission as it was before latency objectives: queue
                 timeouts alone (the old defaults, 30 / 15 / 5 s), objectives
                 set as long, so they never bind
  admission      spillwayd with its defaults (learned limits, the queue with
                 latency objectives 5 / 2 / 1 s, 429 shedding): a config
                 listing only backends, plus the five keys with their classes
  degradation    the same plus automatic degradation, levels 1-2 from the
                 queue's oldest wait (300 ms / 1 s): a default answer at
                 level 1, max_tokens capped at 16 at level 2; by class,
                 sheddable first (level 3 is left to operators)

Per gateway and class: full answers, degraded answers, 429 with Retry-After,
5xx/resets/timeouts, mean and p99 latency of full answers, TTFT, goodput
(full answers per second) against the fleet's capacity, and tokens served
per tenant.
"""
import hashlib
import json
import subprocess
import time
from pathlib import Path

SLOTS, WAITING, SIMS = 8, 8, 3
PREFILL_BASE_MS, PREFILL_US, ITL_MS = 40, 200, 20
OUT_MIN, OUT_MAX = 24, 48

TENANTS = [
    # name, class, weight, stream, prompt min, prompt max
    ("ops", "critical", 10, False, 100, 300),
    ("alice", "standard", 25, True, 100, 300),
    ("bob", "standard", 20, True, 100, 300),
    ("greedy", "standard", 20, True, 2000, 3000),
    ("batch", "sheddable", 25, True, 100, 300),
]


def service_s(prompt_mean):
    return (PREFILL_BASE_MS + PREFILL_US * prompt_mean / 1000 + ITL_MS * (OUT_MIN + OUT_MAX) / 2) / 1000


def capacity_rps():
    """Requests per second the fleet sustains with this mix (slots / mean service time)."""
    total = sum(t[2] for t in TENANTS)
    mean = sum(t[2] / total * service_s((t[4] + t[5]) / 2) for t in TENANTS)
    return SIMS * SLOTS / mean


def key(name):
    return f"sk-bench-{name}"


def gateway_yaml(kind, sims):
    lines = ['server: {listen: "127.0.0.1:0", header_timeout_ms: 600000}',
             "control: {listen: none}"]
    if kind == "unprotected":
        lines += ["admission: {disabled: true}",
                  "upstream: {balancing: {policy: round_robin}, retry: {max_attempts: 1}, max_idle_connections: 1024}"]
    else:
        lines += ["upstream: {max_idle_connections: 1024}"]
        if kind == "timeouts":
            lines += ["admission:",
                      "  critical: {queue_timeout_ms: 30000, objective_ms: 30000}",
                      "  standard: {queue_timeout_ms: 15000, objective_ms: 15000}",
                      "  sheddable: {queue_timeout_ms: 5000, objective_ms: 5000}"]
        lines += ["limits:",
                  "  keys:"]
        for name, cls, *_ in TENANTS:
            lines.append(f"    - {{name: {name}, sha256: {hashlib.sha256(key(name).encode()).hexdigest()}, "
                         f"priority: {cls}}}")
    if kind == "degradation":
        lines += ["degradation:",
                  "  automatic: true",
                  "  wait_thresholds_ms: [300, 1000]",  # levels 1-2 automatic; 3 is the operator's call
                  "  min_dwell_ms: 3000",
                  "  max_tokens_cap: 16",
                  "  default_answers:",
                  "    - {model: busy, text: \"The service is busy; here is a short answer for now.\"}"]
    lines.append("backends:")
    for name, port in sims:
        lines.append(f'  - {{name: {name}, url: "http://127.0.0.1:{port}", models: [busy], '
                     f'health_check: {{path: /healthz}}}}')
    return "\n".join(lines) + "\n"


def scenario(target, phases, seed):
    lines = [f"target: {target}", "max_connections: 8192", f"seed: {seed}", "drain_timeout_ms: 120000",
             "threads: 1", "classes:"]
    for name, cls, weight, stream, pmin, pmax in TENANTS:
        c = {"name": name, "weight": weight, "model": "busy", "priority": cls, "api_key": key(name),
             "stream": stream, "prompt_tokens_min": pmin, "prompt_tokens_max": pmax}
        lines.append("  - " + json.dumps(c))
    lines.append("phases:")
    for p in phases:
        lines.append("  - " + json.dumps(p))
    return "\n".join(lines) + "\n"


def class_row(c, seconds, cap):
    errors = c["errors"]
    r429 = errors.get("429", 0)
    bad = sum(v for k, v in errors.items() if k != "429")
    full = c["ok"] - c["degraded"]
    sent = max(1, c["sent"])
    fl = c["full_latency"]
    al = c.get("answered_latency", {})
    rl = c.get("refused_latency", {})
    return {"sent": c["sent"], "full": full, "degraded": c["degraded"], "r429": r429,
            "r429_with_retry_after": c["retry_after"], "failed": bad, "failed_by_kind": {k: v for k, v in errors.items() if k != "429"},
            "full_pct": round(100 * full / sent, 2), "answered_pct": round(100 * c["ok"] / sent, 2),
            "mean_ms": round(fl["mean_us"] / 1000, 1), "p99_ms": round(fl["p99_us"] / 1000, 1),
            "answered_mean_ms": round(al.get("mean_us", 0) / 1000, 1),
            "refused_p50_ms": round(rl.get("p50_us", 0) / 1000, 1), "refused_p99_ms": round(rl.get("p99_us", 0) / 1000, 1),
            "refused_max_ms": round(rl.get("max_us", 0) / 1000, 1),
            "ttft_p50_ms": round(c["ttft"]["p50_us"] / 1000, 1), "ttft_p99_ms": round(c["ttft"]["p99_us"] / 1000, 1),
            "goodput_rps": round(full / seconds, 2), "output_tokens": c["output_tokens"],
            "prompt_tokens": c.get("prompt_tokens", 0),
            # VTC's measure of service: prompt tokens + 2 x generated tokens.
            "service_tokens": c.get("prompt_tokens", 0) + 2 * c["output_tokens"]}


def start_sims(procs, spillwayd):
    """The busy fleet's simulators (SIMS of them: SLOTS slots, WAITING waiting places, then 503): [(name, port)]."""
    from balancing import start_sim
    sims = []
    for i in range(SIMS):
        _, port = start_sim(procs, spillwayd, [
            "--profile", "default", "--model", "busy", "--prefill-base-ms", str(PREFILL_BASE_MS),
            "--prefill-per-token-us", str(PREFILL_US), "--inter-token-ms", str(ITL_MS),
            "--max-num-seqs", str(SLOTS), "--max-waiting", str(WAITING),
            "--min-output-tokens", str(OUT_MIN), "--max-output-tokens", str(OUT_MAX)])
        sims.append((f"sim{i}", port))
    return sims


def run_all(b, procs, workdir, args):
    from balancing import BusySampler, wait_idle
    from run_bench import read_listen_port
    smoke = args.smoke
    cap = capacity_rps()
    scale = 0.1 if smoke else 1.0
    phases = [{"name": "0.5x", "duration_ms": int(8000 * scale), "rate": round(0.5 * cap, 2)},
              {"name": "1x", "duration_ms": int(8000 * scale), "rate": round(1.0 * cap, 2)},
              {"name": "2x", "duration_ms": int(8000 * scale), "rate": round(2.0 * cap, 2)},
              {"name": "burst-4x", "duration_ms": int(2000 * scale), "rate": round(4.0 * cap, 2)},
              {"name": "3x", "duration_ms": int(12000 * scale), "rate": round(3.0 * cap, 2)}]
    total_s = sum(p["duration_ms"] for p in phases) / 1000
    sims = start_sims(procs, b.spillwayd)
    out = {"definition": {"sims": SIMS, "slots": SLOTS, "waiting": WAITING, "itl_ms": ITL_MS,
                          "output_tokens": [OUT_MIN, OUT_MAX], "capacity_rps": round(cap, 2),
                          "phases": phases, "tenants": [list(t) for t in TENANTS]},
           "gateways": {}}
    out["micro"] = micro(b, procs, workdir, args)
    for kind in ["unprotected", "timeouts", "admission", "degradation"]:
        wait_idle([p for _, p in sims])
        cfg = Path(workdir) / f"busy-{kind}.yaml"
        cfg.write_text(gateway_yaml(kind, sims))
        gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "error"])
        port = read_listen_port(gw)
        b.runs += 1
        path = b.out / f"{b.runs:03d}-busy-fleet-{kind}.json"
        scen = b.out / f"{b.runs:03d}-busy-fleet-{kind}.yaml"
        scen.write_text(scenario(f"http://127.0.0.1:{port}", phases, 11))
        with BusySampler([p for _, p in sims]) as sampler:
            t0 = time.time()
            subprocess.run([b.bench, "--quiet", "--scenario", str(scen), "--json", str(path)], check=True,
                           stdout=subprocess.DEVNULL)
        r = json.loads(path.read_text())
        attainment = objective_attainment(port)
        # Slot use while demand exceeds the fleet (the 2x, burst and 3x phases).
        over_start = t0 + sum(p["duration_ms"] for p in phases[:2]) / 1000
        over_end = t0 + total_s
        slot_use = sum(sampler.busy_share(p, SLOTS, over_start + 1, over_end) for _, p in sims) / len(sims)
        rows = {c["name"]: class_row(c, total_s, cap) for c in r["classes"]}
        overall = class_row(r["overall"], total_s, cap)
        by_class = {}
        for name, cls, *_ in TENANTS:
            agg = by_class.setdefault(cls, {"sent": 0, "full": 0, "degraded": 0, "r429": 0, "failed": 0})
            for k in agg:
                agg[k] += rows[name][k]
        # The overloaded phases alone: goodput against capacity where demand exceeds it.
        over = {}
        for ph in r["phases"]:
            if ph["name"] in ("2x", "burst-4x", "3x"):
                o = ph["report"]
                for k in ("sent", "ok", "degraded"):
                    over[k] = over.get(k, 0) + o[k]
                over["errors"] = over.get("errors", 0) + sum(v for e, v in o["errors"].items() if e != "429")
                over["seconds"] = over.get("seconds", 0) + ph["duration_s"]
        over_goodput = (over["ok"] - over["degraded"]) / over["seconds"] if over.get("seconds") else 0
        # Fairness inside the standard class (alice, bob, greedy) while all
        # three are backlogged (the overloaded phases): each one's share of
        # the service VTC counts (prompt + 2 x generated tokens), against an
        # equal third.
        std = [t[0] for t in TENANTS if t[1] == "standard"]
        service = {t: 0 for t in std}
        for ph in r["phases"]:
            if ph["name"] in ("2x", "burst-4x", "3x"):
                for c in ph.get("classes", []):
                    if c["name"] in service:
                        service[c["name"]] += c.get("full_prompt_tokens", 0) + 2 * c.get("full_output_tokens", 0)
        total_service = sum(service.values()) or 1
        fairness = {t: round(service[t] / total_service, 3) for t in std}
        full_total = sum(v["full"] for v in rows.values())
        out["gateways"][kind] = {"tenants": rows, "standard_class_service_share": fairness,
                                 "slot_use_under_overload_pct": round(100 * slot_use, 1),
                                 "full_answers_per_s": round(full_total / r["duration_s"], 2), "classes": by_class, "overall": overall,
                                 "overload_goodput_rps": round(over_goodput, 2),
                                 "overload_goodput_pct_of_capacity": round(100 * over_goodput / cap, 1),
                                 "overload_failed": over.get("errors", 0),
                                 "objective_attainment": attainment}
        gw.terminate()
        gw.wait(timeout=30)
    return out


def objective_attainment(port):
    """Each class's share of requests answered in full inside its objective, from the gateway's metrics."""
    import re
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except OSError:
        return {}
    counts = {}
    for cls, outcome, v in re.findall(
            r'spillway_objective_requests_total\{model="[^"]*",class="([a-z]+)",outcome="([a-z]+)"\} ([0-9.e+]+)', text):
        counts.setdefault(cls, {})[outcome] = counts.get(cls, {}).get(outcome, 0) + float(v)
    return {cls: round(100 * c.get("met", 0) / (c.get("met", 0) + c.get("missed", 0)), 2)
            for cls, c in counts.items() if c.get("met", 0) + c.get("missed", 0) > 0}


def micro(b, procs, workdir, args):
    """spillway-bench admission: decision costs; the Redis limiter against a redis-server of its own."""
    import shutil
    from run_bench import free_port, wait_port
    cmd = [b.bench, "admission", "--json", str(b.out / "admission-micro.json"),
           "--iterations", "20000" if args.smoke else "200000"]
    redis = shutil.which("redis-server")
    if redis:
        port = free_port()
        procs.start([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(workdir)])
        wait_port(port)
        cmd += ["--redis", f"127.0.0.1:{port}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((b.out / "admission-micro.json").read_text())


def markdown(s):
    d = s["definition"]
    lines = ["", "## Busy fleet (admission control)", "",
             f"{d['sims']} simulators x {d['slots']} slots (+{d['waiting']} waiting, then 503); capacity "
             f"{d['capacity_rps']} req/s for this mix. Phases: " +
             ", ".join(f"{p['name']} {p['duration_ms'] / 1000:g}s" for p in d["phases"]) + ".", "",
             "| gateway | sent | full | degraded | 429 (with Retry-After) | 5xx/reset/timeout | full % | answered % "
             "| mean ms (full) | p99 ms (full) | mean ms (answered) | 429 p99 / max ms | full answers/s (whole run) "
             "| goodput under overload, % of capacity | fleet slots busy under overload "
             "| within objective: critical / standard / sheddable |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    m = s.get("micro")
    for kind, g in s["gateways"].items():
        o = g["overall"]
        lines.append(f"| {kind} | {o['sent']} | {o['full']} | {o['degraded']} | {o['r429']} ({o['r429_with_retry_after']}) "
                     f"| {o['failed']} | {o['full_pct']} | {o['answered_pct']} | {o['mean_ms']} | {o['p99_ms']} "
                     f"| {o['answered_mean_ms']} | {o['refused_p99_ms']} / {o['refused_max_ms']} "
                     f"| {g['full_answers_per_s']} | {g['overload_goodput_pct_of_capacity']} % "
                     f"| {g['slot_use_under_overload_pct']} % | "
                     + " / ".join(f"{g['objective_attainment'].get(c, '-')}" for c in ("critical", "standard", "sheddable"))
                     + " |")
    lines += ["", "Share of the standard class's service in the overloaded phases (prompt + 2 x generated "
              "tokens of full answers, VTC's measure; greedy sends 10x the tokens; fair is 0.333 each while all "
              "three are backlogged):", ""]
    for kind, g in s["gateways"].items():
        lines.append(f"- {kind}: " + ", ".join(f"{t} {v}" for t, v in g["standard_class_service_share"].items()))
    lines += ["", "Per tenant (class): full / degraded / 429 / failed, p99 of full answers, tokens received:", "",
              "| gateway | " + " | ".join(f"{t[0]} ({t[1]})" for t in d["tenants"]) + " |",
              "|---|" + "---|" * len(d["tenants"])]
    for kind, g in s["gateways"].items():
        cells = []
        for t in d["tenants"]:
            r = g["tenants"][t[0]]
            cells.append(f"{r['full']}/{r['degraded']}/{r['r429']}/{r['failed']}, {r['p99_ms']} ms, {r['output_tokens']} tok")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    if m:
        lines += ["", f"Decision costs (spillway-bench admission, one thread, medians of 5): GCRA {m['gcra_ns']:.0f} ns, "
                  f"rate-limit check over 3 scopes {m['rate_limit_check_ns']:.0f} ns, queue admit + dispatch "
                  f"{m['queue_admit_dispatch_ns']:.0f} ns"
                  + (f"; Redis limiter round trip p50 {m['redis_take_p50_us']:.0f} us, p99 {m['redis_take_p99_us']:.0f} us"
                     if "redis_take_p99_us" in m else "") + "."]
    return "\n".join(lines) + "\n"


def check_sane(s):
    for kind, g in s["gateways"].items():
        o = g["overall"]
        assert o["sent"] > 0, kind
        assert o["full"] + o["degraded"] + o["r429"] + o["failed"] == o["sent"], (kind, o)
