"""A connection flood against the gateway's own limits (issue 24: overload manager), standalone.

One spillwayd (two simulated backends in-process: "paced", 50 tokens 20 ms
apart; "bulk", 2,000 tokens at once) with server.overload.max_connections
21,500 and a long header timeout (so idle connections stay), then:

  1. 10 healthy streams on "paced", timed: the baseline pace;
  2. 20,000 idle TCP connections opened and held;
  3. 1,000 slow readers: streaming requests for "bulk" (about 400 kB each)
     with a 4 kB receive buffer, each read 1 kB a second, so the gateway's
     writes back up;
  4. 10 healthy streams on "paced" again, timed, while all of that is held;
  5. connections up to the limit (from the gateway's own count), then 1,000
     more: each of those should get 503 gateway_overloaded.

Prints and writes bench-results/connection-flood.json: the gateway's RSS
(before, with the flood held, peak), the healthy streams' duration before
and during (ratio), and how the extra connections were answered. Needs to
raise its open-file limit (run as root, or with a hard limit of 50,000+).

Usage: python3 tests/bench/connection_flood.py [--build build/release] [--idle 20000] [--slow 1000]
"""
import argparse
import json
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import ROOT, read_listen_port, rss_kb  # noqa: E402


def request(model, stream, max_tokens):
    body = json.dumps({"model": model, "stream": stream, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "hello"}]})
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def healthy_streams(port, n=10):
    """n paced streams one after another; each one's seconds from request to [DONE]."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        t0 = time.time()
        s.sendall(request("paced", True, 50))
        data = b""
        while b"data: [DONE]" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        out.append(time.time() - t0)
        s.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--idle", type=int, default=20000)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--extra", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=20.0, help="seconds the flood is held before the second timing")
    args = ap.parse_args()
    # Open files: this process holds every client socket; spillwayd holds as
    # many plus two per slow reader (the upstream connection and the
    # in-process simulator's end). Raise the limit where allowed, else fit
    # the idle connections under it (and say so).
    want = args.idle + 3 * args.slow + args.extra + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        fitted = hard - 3 * args.slow - args.extra - 1000
        if fitted < args.idle:
            print(f"open-file hard limit {hard} (cannot raise it): {fitted} idle connections instead of {args.idle}")
            args.idle = max(0, fitted)
    max_connections = args.idle + args.slow + args.extra // 2  # half the extra ones fit, half are refused
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "flood.yaml"
        cfg.write_text(f"""server:
  listen: "127.0.0.1:0"
  threads: 2
  header_timeout_ms: 600000
  drain_timeout_ms: 1000
  overload: {{max_connections: {max_connections}}}
control: {{listen: none}}
admission: {{disabled: true}}
backends:
  - {{name: paced, url: "sim://paced", models: [paced],
     sim: {{profile: instant, inter_token_ms: 20, min_output_tokens: 50, max_output_tokens: 50}}}}
  - {{name: bulk, url: "sim://bulk", models: [bulk],
     sim: {{profile: instant, min_output_tokens: 2000, max_output_tokens: 2000, max_num_seqs: 100000, max_waiting: 100000}}}}
""")
        gw = subprocess.Popen([str(Path(args.build) / "app" / "spillwayd"), "--config", str(cfg), "--log-level", "warn"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = read_listen_port(gw)
            time.sleep(1)
            rss_before = rss_kb(gw.pid, "VmRSS")
            before = healthy_streams(port)

            idle = []
            t0 = time.time()
            for _ in range(args.idle):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
            idle_s = time.time() - t0

            sel = selectors.DefaultSelector()
            slow = []
            for _ in range(args.slow):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port))
                s.sendall(request("bulk", True, 2000))
                s.setblocking(False)
                slow.append(s)
            received = 0
            held_until = time.time() + args.hold
            rss_samples = []
            # Hold: every slow reader takes 1 kB a second; RSS sampled each second.
            while time.time() < held_until:
                for s in slow:
                    try:
                        received += len(s.recv(1024))
                    except BlockingIOError:
                        pass
                rss_samples.append(rss_kb(gw.pid, "VmRSS"))
                time.sleep(1)
            during = healthy_streams(port)
            rss_held = rss_kb(gw.pid, "VmRSS")

            # What the gateway counts now (one more connection: this scrape).
            import urllib.request
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            open_now = next((float(l.split()[-1]) for l in metrics.splitlines()
                             if l.startswith("spillway_overload_connections ")), -1)
            # Past the limit: what do the extra connections get?
            # Up to the limit from where the gateway stands now (the slow
            # readers whose answers fit in the kernel's buffers have been
            # closed: keep-alive is off near the limit), then args.extra past it.
            answers = {"503_gateway_overloaded": 0, "other": 0, "closed_without_answer": 0, "accepted": 0}
            room = max(0, max_connections - int(open_now))
            extra = []
            for _ in range(room + args.extra):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                extra.append(s)
            # Three seconds for every answer to arrive; a connection with
            # nothing to say by then was accepted (under the limit, it waits
            # for a request).
            waiting = selectors.DefaultSelector()
            for s in extra:
                s.setblocking(False)
                waiting.register(s, selectors.EVENT_READ)
            data_of = {}
            deadline = time.time() + 3
            while time.time() < deadline and len(data_of) < len(extra):
                for key, _ in waiting.select(timeout=0.2):
                    try:
                        data_of[key.fileobj] = key.fileobj.recv(4096)
                    except OSError:
                        data_of[key.fileobj] = b""
                    waiting.unregister(key.fileobj)
            for s in extra:
                data = data_of.get(s)
                if data is None:
                    answers["accepted"] += 1
                elif data.startswith(b"HTTP/1.1 503") and b"gateway_overloaded" in data:
                    answers["503_gateway_overloaded"] += 1
                elif data:
                    answers["other"] += 1
                else:
                    answers["closed_without_answer"] += 1
            peak = rss_kb(gw.pid)
            for s in idle + slow + extra:
                s.close()
        finally:
            gw.terminate()
            gw.wait(timeout=60)
    result = {
        "idle_connections": args.idle, "slow_readers": args.slow, "extra_connections": args.extra,
        "max_connections": max_connections, "idle_open_seconds": round(idle_s, 2),
        "gateway_connections_before_extra": open_now,
        "room_under_the_limit": room,
        "rss_mb": {"before": round(rss_before / 1024, 1), "held": round(rss_held / 1024, 1),
                   "held_max": round(max(rss_samples) / 1024, 1) if rss_samples else 0, "peak": round(peak / 1024, 1)},
        "slow_readers_received_kb": round(received / 1024),
        "healthy_stream_s": {"before_median": round(statistics.median(before), 3),
                             "during_median": round(statistics.median(during), 3),
                             "ratio": round(statistics.median(during) / statistics.median(before), 3)},
        "extra_answers": answers,
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "connection-flood.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
