"""The endpoints benchmarks (issue: every endpoint an inference fleet serves).

  embeddings   batches of 64 inputs through one spillwayd in front of a
               simulator that charges per input token (2 ms + 0.5 ms per
               token, like an embedding server whose cost grows with the
               batch): a batch of 64 new inputs (uncached) vs a batch of 58
               inputs seen before and 6 new ones, shuffled (90 % cached).
               Interleaved rounds, medians; the inputs the upstream received
               are read from spillway_cache_embedding_items_total.
  passthrough  one client, keep-alive, an instant simulator: POST
               /v1/rerank (passthrough) vs POST /v1/chat/completions,
               interleaved, p50/p99 of each.

Usage: python3 tests/bench/endpoints.py [--build build/release] [--rounds 15]
Writes bench-results/endpoints.json and prints a markdown table.
"""
import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import ROOT, Procs, read_listen_port  # noqa: E402

CONFIG = """server: {listen: "127.0.0.1:0", threads: 2}
backends:
  - name: embedder
    url: sim://embedder
    models: [embed]
    sim: {profile: instant, prefill_base_ms: 2, embed_per_token_us: 500, max_num_seqs: 64,
           embedding_dimensions: 256}
  - name: chat
    url: sim://chat
    models: [small]
    sim: {profile: instant, min_output_tokens: 4, max_output_tokens: 4}
"""


def start(procs, build, workdir):
    cfg = Path(workdir) / "endpoints.yaml"
    cfg.write_text(CONFIG)
    return read_listen_port(procs.start([str(Path(build) / "app" / "spillwayd"), "--config", str(cfg)]))


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path, body):
        data = json.dumps(body)
        t = time.perf_counter()
        self.conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        payload = r.read()
        elapsed = time.perf_counter() - t
        if r.status != 200:
            raise SystemExit(f"{path}: HTTP {r.status}: {payload[:300]!r}")
        return elapsed, dict(r.getheaders()), payload

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        return r.read().decode()


def items_missed(client):
    for line in client.get("/metrics").splitlines():
        if line.startswith('spillway_cache_embedding_items_total{outcome="miss"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def words(n, salt):
    rng = random.Random(salt)
    return " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "omega", "sigma"]) + str(rng.randrange(1000))
                    for _ in range(n))


def embeddings(client, rounds):
    fresh = lambda r, tag: [f"{tag} {r} {i} " + words(3, f"{tag}{r}{i}") for i in range(64)]
    uncached, cached, sent_uncached, sent_cached = [], [], [], []
    for r in range(rounds):
        a = fresh(r, "a")
        before = items_missed(client)
        t, _, _ = client.post("/v1/embeddings", {"model": "embed", "input": a})
        uncached.append(t)
        sent_uncached.append(items_missed(client) - before)
        mixed = random.Random(r).sample(a, 58) + fresh(r, "b")[:6]
        random.Random(r + 1).shuffle(mixed)
        before = items_missed(client)
        t, headers, body = client.post("/v1/embeddings", {"model": "embed", "input": mixed})
        cached.append(t)
        sent_cached.append(items_missed(client) - before)
        data = json.loads(body)["data"]
        assert [d["index"] for d in data] == list(range(64)), "indices out of order"
        assert headers.get("x-spillway-cache-items") == "58/64", headers
    u, c = statistics.median(uncached), statistics.median(cached)
    return {"rounds": rounds, "uncached_ms_p50": u * 1e3, "cached90_ms_p50": c * 1e3, "ratio": c / u,
            "upstream_inputs_uncached": statistics.median(sent_uncached),
            "upstream_inputs_cached90": statistics.median(sent_cached)}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def passthrough(client, n):
    chat, rerank = [], []
    chat_body = {"model": "small", "messages": [{"role": "user", "content": "Rank these for me"}], "max_tokens": 4}
    rerank_body = {"model": "small", "query": "red apple", "documents": ["green pear", "red apple pie", "apple"]}
    for _ in range(50):  # warm the connection and the pools
        client.post("/v1/chat/completions", chat_body)
        client.post("/v1/rerank", rerank_body)
    for _ in range(n):
        chat.append(client.post("/v1/chat/completions", chat_body)[0])
        rerank.append(client.post("/v1/rerank", rerank_body)[0])
    us = lambda v: v * 1e6
    return {"requests": n, "chat_p50_us": us(pct(chat, 50)), "chat_p99_us": us(pct(chat, 99)),
            "passthrough_p50_us": us(pct(rerank, 50)), "passthrough_p99_us": us(pct(rerank, 99))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    procs = Procs()
    with tempfile.TemporaryDirectory() as workdir:
        try:
            client = Client(start(procs, args.build, workdir))
            result = {"machine": os.uname().nodename, "cpus": os.cpu_count(),
                      "embeddings": embeddings(client, args.rounds),
                      "passthrough": passthrough(client, args.requests)}
        finally:
            procs.stop_all()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "endpoints.json").write_text(json.dumps(result, indent=2))
    e, p = result["embeddings"], result["passthrough"]
    print("| embeddings, batch of 64 | p50 latency | inputs sent upstream |")
    print("|---|---|---|")
    print(f"| uncached | {e['uncached_ms_p50']:.1f} ms | {e['upstream_inputs_uncached']:.0f} |")
    print(f"| 90 % cached | {e['cached90_ms_p50']:.1f} ms | {e['upstream_inputs_cached90']:.0f} |")
    print(f"| ratio | {e['ratio']:.2f}x (target <= 0.2x: {'met' if e['ratio'] <= 0.2 else 'not met'}) | |")
    print()
    print("| one client, keep-alive | p50 | p99 |")
    print("|---|---|---|")
    print(f"| chat completions | {p['chat_p50_us']:.0f} us | {p['chat_p99_us']:.0f} us |")
    print(f"| passthrough (/v1/rerank) | {p['passthrough_p50_us']:.0f} us | {p['passthrough_p99_us']:.0f} us |")
    ok = p["passthrough_p50_us"] <= p["chat_p50_us"] and p["passthrough_p99_us"] <= p["chat_p99_us"] * 1.0
    print(f"passthrough no slower than chat: {'met' if ok else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
