"""The cache benchmarks (issue: response caching), run by run_bench.py.

  throughput   through one spillwayd (memory tier only) in front of a
               zero-latency upstream (nginx answering a fixed completion):
               L1 hits (one deterministic question, repeated) vs misses
               (deterministic, every prompt different: each goes upstream
               and is stored) vs nginx proxying the same upstream; 64
               clients, interleaved rounds, medians. Plus 1-client latency
               of a hit against the upstream answered directly.
  micro        `spillway-bench cache`: key cost, a memory-tier hit, and
               disk-tier hits with 1,000,000 entries in SQLite (p50/p99).
  burst        1,000 identical concurrent requests (half streaming) against
               a simulator that takes ~0.5 s to answer: how many reach the
               backend, and whether every client got the full answer.
  zipf         a busy simulated fleet (2 simulators, 8 slots each, 503 when
               full) driven at ~2x its capacity by deterministic questions
               drawn from 2,000 by a Zipf law (s = 1.0), with the cache on
               (defaults) vs off (cache.disabled), same seed, same run.
"""
import asyncio
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from run_bench import FAST_BODY, med, q, read_listen_port, start_nginx

ZIPF_PROMPTS, ZIPF_S = 2000, 1.0
SLOTS, WAITING = 8, 8


def metric_sum(port, name, label_filter=None):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels, value = line.rsplit(" ", 1)
        if label_filter and not label_filter(labels):
            continue
        total += float(value)
    return total


def backend_requests(port):
    """Requests the gateway sent to a backend (answered by one), from spillway_requests_total."""
    return metric_sum(port, "spillway_requests_total", lambda l: 'backend=""' not in l)


def cpu_seconds(pid):
    """User + system CPU time a process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(b, procs, workdir, args):
    import shutil
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    fast = start_nginx(procs, nginx, workdir, "cache-fast", {"/v1/": "fast"}, 1)
    cfg = Path(workdir) / "cache-gw.yaml"
    cfg.write_text(f"""server: {{listen: "127.0.0.1:0"}}
control: {{listen: none}}
upstream: {{max_idle_connections: 1024}}
cache: {{scope: shared}}
backends:
  - {{name: fast, url: "http://127.0.0.1:{fast}", models: [bench], health_check: {{path: /health}}}}
""")
    gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "warn"])
    gw_port = read_listen_port(gw)
    ngx = start_nginx(procs, nginx, workdir, "cache-proxy", {"/v1/": fast}, 1)
    gw_url, ngx_url, direct_url = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{ngx}", f"http://127.0.0.1:{fast}"

    def run(name, target, extra, **kw):
        return b.load(name, target, "bench", args.seconds, extra=extra, **kw)

    hit_flags = ["--deterministic", "--distinct-prompts", "1"]
    miss_flags = ["--deterministic", "--unique-prompts"]
    kinds = {"hit": (gw_url, hit_flags), "miss": (gw_url, miss_flags), "nginx": (ngx_url, [])}
    run("cache-warm", gw_url, hit_flags, concurrency=1)  # the one question is stored
    thr = {k: [] for k in kinds}
    cpu_us = {"hit": [], "miss": []}  # spillwayd's CPU per request: what a hit saves, whoever limits throughput
    one = {k: {"p50": [], "p99": []} for k in ("hit", "direct")}
    order = list(kinds)
    for rnd in range(args.rounds):
        rot = order[rnd % len(order):] + order[:rnd % len(order)]
        for k in rot:
            target, flags = kinds[k]
            cpu0 = cpu_seconds(gw.pid)
            r = run(f"cache-max-{k}", target, flags, concurrency=64)
            thr[k].append(r["throughput"])
            if k in cpu_us:
                cpu_us[k].append((cpu_seconds(gw.pid) - cpu0) * 1e6 / max(1, r["overall"]["ok"]))
        for k, target, flags in (("hit", gw_url, hit_flags), ("direct", direct_url, [])):
            r = run(f"cache-1client-{k}", target, flags, concurrency=1)
            one[k]["p50"].append(q(r))
            one[k]["p99"].append(q(r, p="p99_us"))
    hits = metric_sum(gw_port, "spillway_cache_requests_total", lambda l: 'outcome="hit"' in l)
    res = {"max_throughput": {k: {"runs": [round(x) for x in v], "median": med(v)} for k, v in thr.items()},
           "one_client": {k: {"p50_us": med(v["p50"]), "p99_us": med(v["p99"])} for k, v in one.items()},
           "gateway_hits_counted": hits,
           "gateway_cpu_us_per_request": {k: round(med(v), 2) for k, v in cpu_us.items()}}
    m = res["max_throughput"]
    res["hit_to_miss"] = m["hit"]["median"] / max(1, m["miss"]["median"])
    res["hit_to_nginx"] = m["hit"]["median"] / max(1, m["nginx"]["median"])
    res["hit_added_p99_us"] = res["one_client"]["hit"]["p99_us"] - res["one_client"]["direct"]["p99_us"]
    cpu = res["gateway_cpu_us_per_request"]
    res["miss_to_hit_cpu"] = cpu["miss"] / max(0.01, cpu["hit"])
    return res


def micro(b, args):
    path = b.out / "cache-micro.json"
    entries = "5000" if args.smoke else "1000000"
    out = subprocess.run([b.bench, "cache", "--entries", entries, "--json", str(path)], check=True,
                         capture_output=True, text=True)
    print(out.stdout, end="")
    return json.loads(path.read_text())


async def one_client(port, body, stream):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    writer.write(raw.encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(-1), timeout=120)
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    cache = re.search(rb"x-spillway-cache: (\w+)", head)
    text = rest.decode(errors="replace")
    if stream:
        # Chunked SSE: the deltas' contents, in order, and the closing [DONE].
        parts = re.findall(r'"delta":\{[^}]*"content":"((?:[^"\\]|\\.)*)"', text)
        complete = "data: [DONE]" in text
        content = "".join(parts)
    else:
        m = re.search(r'"content":"((?:[^"\\]|\\.)*)"', text)
        content = m.group(1) if m else ""
        complete = status == 200 and '"finish_reason"' in text
    return status, complete, content, cache.group(1).decode() if cache else ""


async def burst_clients(port, n, prompt):
    json_body = json.dumps({"model": "burst", "temperature": 0, "max_tokens": 50,
                            "messages": [{"role": "user", "content": prompt}]})
    stream_body = json.dumps({"model": "burst", "temperature": 0, "max_tokens": 50, "stream": True,
                              "messages": [{"role": "user", "content": prompt}]})
    tasks = [one_client(port, stream_body if i % 2 else json_body, i % 2 == 1) for i in range(n)]
    return await asyncio.gather(*tasks, return_exceptions=True)


def burst(b, procs, workdir, args):
    n = 100 if args.smoke else 1000
    cfg = Path(workdir) / "cache-burst.yaml"
    cfg.write_text("""server: {listen: "127.0.0.1:0"}
control: {listen: none}
cache: {scope: shared}
backends:
  - {name: sim, url: "sim://burst", models: [burst],
     sim: {prefill_base_ms: 200, inter_token_ms: 6, min_output_tokens: 50, max_output_tokens: 50}}
""")
    gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "warn"])
    port = read_listen_port(gw)
    t0 = time.time()
    results = asyncio.run(burst_clients(port, n, f"one question for everyone {time.time()}"))
    seconds = time.time() - t0
    errors = [r for r in results if isinstance(r, Exception)]
    ok = [r for r in results if not isinstance(r, Exception)]
    contents = {r[2] for r in ok if r[1]}
    outcomes = {}
    for r in ok:
        outcomes[r[3]] = outcomes.get(r[3], 0) + 1
    return {"clients": n, "streaming": n // 2, "backend_requests": backend_requests(port),
            "complete_answers": sum(1 for r in ok if r[0] == 200 and r[1]), "client_errors": len(errors),
            "distinct_contents": len(contents), "outcomes": outcomes, "seconds": round(seconds, 2)}


def zipf(b, procs, workdir, args):
    seconds = 3 if args.smoke else 20
    sims = []
    for i in range(2):
        p = procs.start([b.spillwayd, "sim", "--listen", "127.0.0.1:0", "--threads", "1", "--max-num-seqs", str(SLOTS),
                         "--max-waiting", str(WAITING), "--inter-token-ms", "10", "--min-output-tokens", "24",
                         "--max-output-tokens", "24", "--model", "zipf"])
        sims.append(read_listen_port(p))
    # 8 slots / (prefill ~50 ms + 24 x 10 ms) per simulator.
    capacity = 2 * SLOTS / 0.29
    rate = round(2 * capacity)
    res = {"capacity_rps": round(capacity, 1), "rate_rps": rate, "prompts": ZIPF_PROMPTS, "zipf_s": ZIPF_S,
           "seconds": seconds}
    for kind in ("off", "on"):
        cfg = Path(workdir) / f"cache-zipf-{kind}.yaml"
        lines = ['server: {listen: "127.0.0.1:0"}', "control: {listen: none}", "upstream: {max_idle_connections: 1024}"]
        lines.append("cache: {disabled: true}" if kind == "off" else "cache: {scope: shared}")
        lines.append("backends:")
        for i, port in enumerate(sims):
            lines.append(f'  - {{name: sim{i}, url: "http://127.0.0.1:{port}", models: [zipf], '
                         f'health_check: {{path: /healthz}}}}')
        cfg.write_text("\n".join(lines) + "\n")
        gw = procs.start([b.spillwayd, "--config", str(cfg), "--log-level", "warn"])
        port = read_listen_port(gw)
        r = b.load(f"cache-zipf-{kind}", f"http://127.0.0.1:{port}", "zipf", seconds, rate=rate, threads=1,
                   extra=["--deterministic", "--distinct-prompts", str(ZIPF_PROMPTS), "--zipf-s", str(ZIPF_S),
                          "--max-tokens", "24"])
        o = r["overall"]
        errors = o.get("errors", {})
        res[kind] = {"sent": o["sent"], "ok": o["ok"], "r429": errors.get("429", 0),
                     "r5xx": sum(v for k, v in errors.items() if k.startswith("5")),
                     "other_errors": sum(v for k, v in errors.items() if not k.startswith("5") and k != "429"),
                     "p50_ms": round(q(r) / 1000, 1), "p99_ms": round(q(r, p="p99_us") / 1000, 1),
                     "backend_requests": backend_requests(port),
                     "goodput_rps": round(o["ok"] / seconds, 1)}
        gw.terminate()
        gw.wait(timeout=30)
    return res


def run_all(b, procs, workdir, args):
    return {"throughput": throughput(b, procs, workdir, args), "micro": micro(b, args),
            "burst": burst(b, procs, workdir, args), "zipf": zipf(b, procs, workdir, args)}


def mark(ok):
    return "**met**" if ok else "**not met**"


def markdown(c):
    t, m, bu, z = c["throughput"], c["micro"], c["burst"], c["zipf"]
    mt = t["max_throughput"]
    out = ["## Response cache", "",
           "Through one spillwayd (memory tier) in front of a zero-latency upstream, 64 clients, medians:", "",
           "| | req/s | runs |", "|---|---:|---|"]
    for k, label in (("hit", "L1 hit (one question repeated)"), ("miss", "miss (every prompt new, stored)"),
                     ("nginx", "nginx proxying the upstream")):
        out.append(f"| {label} | {mt[k]['median']:.0f} | {mt[k]['runs']} |")
    oc = t["one_client"]
    out += ["", f"- hit / miss: **{t['hit_to_miss']:.2f}x** (target >= 3x: {mark(t['hit_to_miss'] >= 3)})",
            f"- hit / nginx: **{t['hit_to_nginx']:.2f}x** (target >= 1.5x: {mark(t['hit_to_nginx'] >= 1.5)})",
            f"- spillwayd CPU per request: hit {t['gateway_cpu_us_per_request']['hit']} us, miss "
            f"{t['gateway_cpu_us_per_request']['miss']} us ({t['miss_to_hit_cpu']:.2f}x: what a hit saves the gateway "
            f"itself, whoever limits the throughput)",
            f"- 1 client: hit p50 {oc['hit']['p50_us']:.0f} us, p99 {oc['hit']['p99_us']:.0f} us; the upstream "
            f"answered directly p50 {oc['direct']['p50_us']:.0f} us, p99 {oc['direct']['p99_us']:.0f} us; added p99 "
            f"**{t['hit_added_p99_us']:.0f} us** (target <= 200 us: {mark(t['hit_added_p99_us'] <= 200)})", "",
            f"Micro (`spillway-bench cache`): key {m['key_ns']:.0f} ns, memory hit {m['memory_hit_ns']:.0f} ns; "
            f"disk tier with {m['disk_entries']:,} entries: hit p50 {m['disk_hit_p50_us']:.0f} us, "
            f"p99 **{m['disk_hit_p99_us']:.0f} us** (target <= 1 ms: {mark(m['disk_hit_p99_us'] <= 1000)}), "
            f"a Bloom-answered miss p99 {m['disk_bloom_miss_p99_us']:.2f} us.", "",
            f"Burst: {bu['clients']} identical concurrent requests ({bu['streaming']} streaming): "
            f"**{bu['backend_requests']:.0f}** reached the backend, {bu['complete_answers']} complete answers, "
            f"{bu['distinct_contents']} distinct content(s), {bu['client_errors']} client errors, outcomes "
            f"{bu['outcomes']} (target: once, every client answered: "
            f"{mark(bu['backend_requests'] == 1 and bu['complete_answers'] == bu['clients'])})", "",
            f"Zipf (s = {z['zipf_s']}, {z['prompts']} questions, deterministic) on a busy fleet of capacity "
            f"~{z['capacity_rps']} req/s at {z['rate_rps']} req/s for {z['seconds']} s:", "",
            "| cache | sent | ok | 429 | 5xx | p50 ms | p99 ms | backend requests | goodput req/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k in ("off", "on"):
        r = z[k]
        out.append(f"| {k} | {r['sent']} | {r['ok']} | {r['r429']} | {r['r5xx']} | {r['p50_ms']} | {r['p99_ms']} | "
                   f"{r['backend_requests']:.0f} | {r['goodput_rps']} |")
    return "\n".join(out) + "\n\n"


def check_sane(c):
    assert c["throughput"]["max_throughput"]["hit"]["median"] > 0
    assert c["throughput"]["gateway_hits_counted"] > 0, "no cache hit was counted"
    assert c["micro"]["disk_hit_p99_us"] > 0
    assert c["burst"]["complete_answers"] > 0
    assert c["zipf"]["on"]["sent"] > 0 and c["zipf"]["off"]["sent"] > 0
