"""How fast a config applied on one replica runs on the others (issue: replicas act as one gateway).

Starts `make fleet-demo`'s fleet (deploy/fleet-demo/fleet-demo.sh: one
Redis, three spillwayd replicas, simulated backends), applies a change on
replica 1 with spillctl N times, and after each apply polls replicas 2 and 3
(spillctl config get) until both run it. Prints each apply's time until the
slower follower runs it, the median and the maximum; writes
bench-results/config-follow.json.

Usage: python3 tests/bench/config_follow.py [--build build/release] [--applies 8]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build" / "release"))
    ap.add_argument("--applies", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    args = ap.parse_args()
    ctl = str(Path(args.build) / "app" / "spillctl")
    demo = subprocess.Popen([str(ROOT / "deploy" / "fleet-demo" / "fleet-demo.sh"), args.build],
                            env={"FRONT_PORT": str(free_port()), "PATH": "/usr/sbin:/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text = ""
        while "Ctrl-C stops everything" not in text:
            line = demo.stdout.readline()
            if not line:
                sys.exit("fleet-demo did not start:\n" + text)
            text += line
        controls = re.findall(r"control 127\.0\.0\.1:(\d+)", text)
        token = re.search(r"--token-file (\S+) fleet", text).group(1)

        def spillctl(port, *cmd):
            return subprocess.run([ctl, "--addr", f"127.0.0.1:{port}", "--token-file", token, *cmd],
                                  capture_output=True, text=True, check=True).stdout

        base = spillctl(controls[0], "config", "get")
        times = []
        for i in range(args.applies):
            value = 2000 + i
            Path("/tmp/config-follow.yaml").write_text(
                base.replace('"requests_per_minute": 3000', f'"requests_per_minute": {value}'))
            t0 = time.time()
            spillctl(controls[0], "config", "apply", "/tmp/config-follow.yaml")
            seen = {}
            while len(seen) < 2 and time.time() - t0 < 10:
                for port in controls[1:]:
                    if port not in seen and f'"requests_per_minute": {value}' in spillctl(port, "config", "get"):
                        seen[port] = time.time() - t0
            times.append(round(max(seen.values()), 3) if len(seen) == 2 else None)
            time.sleep(0.37)  # applies at varying points of the heartbeat
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    ok = [t for t in times if t is not None]
    result = {"applies": times, "median_s": statistics.median(ok), "max_s": max(ok), "missed": len(times) - len(ok)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "config-follow.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"apply on replica 1 -> running on replicas 2 and 3: {times} s; median {result['median_s']} s, "
          f"max {result['max_s']} s, not followed within 10 s: {result['missed']}")


if __name__ == "__main__":
    main()
