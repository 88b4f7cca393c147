"""A real spillwayd for the deploy tests: started on a kernel-chosen
loopback port, the port read from its banner, its output drained so it never
blocks on a full pipe. The caller terminates it."""
import re
import subprocess
import threading


def start(spillwayd, args):
    """Starts `spillwayd ARGS` (which should include --listen 127.0.0.1:0);
    returns (process, port), port None when it never said where it listens."""
    proc = subprocess.Popen([spillwayd, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        # The banner's own line, printed once everything is ready (the
        # engine's log says "listening on" earlier).
        m = re.match(r"spillwayd(?: sim)?: listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        # It stopped before listening: say why.
        print("spillwayd said:\n" + "".join(seen[-40:]))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port
