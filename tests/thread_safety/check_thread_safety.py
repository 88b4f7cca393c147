#!/usr/bin/env python3
"""clang's thread-safety analysis over the engine, as CI runs it.

Every engine source in the build's compile_commands.json is compiled again
with clang++ -fsyntax-only -Wthread-safety -Werror=thread-safety (no code is
generated: the analysis is all this build is for; GCC builds the product).
The annotations it checks are in engine/common/mutex.h: ABSL_GUARDED_BY on
shared state, ABSL_EXCLUSIVE_LOCKS_REQUIRED on functions that expect a lock.

Usage: check_thread_safety.py BUILD_DIR SOURCE_DIR [--jobs N] [--clang PATH] [--only SUBSTRING]
(--only: just the sources whose path contains SUBSTRING, while editing.)
Exit 77 (CTest's skip) when clang++ is missing. Before the engine, a
self-test compiles a snippet that reads guarded state without its lock and
expects clang to refuse it, so a flag or macro that silently disables the
analysis fails this check instead of passing it.
"""
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety", "-Wno-unknown-warning-option",
         # Boost.Asio 1.81 does not detect clang 14's C++20 coroutines with libstdc++.
         "-DBOOST_ASIO_HAS_CO_AWAIT=1", "-DBOOST_ASIO_HAS_STD_COROUTINE=1"]
SELF_TEST = r'''
#include "common/mutex.h"
struct Counter {
  spillway::common::Mutex mu;
  int n ABSL_GUARDED_BY(mu) = 0;
  int unlocked() { return n; }  // must be refused
  int locked() { spillway::common::MutexLock lock(mu); return n; }
};
'''


def clang_command(entry, clang):
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    out = [clang]
    skip = False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = a == "-o"
            continue
        if a.startswith("-W") or a.startswith("-O") or a == "-g" or a == entry["file"]:
            continue
        out.append(a)
    return out + FLAGS + [entry["file"]]


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    args = sys.argv[1:]
    jobs = os.cpu_count() or 2
    clang = shutil.which("clang++")
    if "--jobs" in args:
        i = args.index("--jobs")
        jobs = int(args[i + 1])
        del args[i:i + 2]
    only = ""
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1]
        del args[i:i + 2]
    if "--clang" in args:
        i = args.index("--clang")
        clang = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__)
        return 2
    build, source = args
    if not clang:
        print("SKIP: clang++ is not installed (apt-get install clang)")
        return 77
    engine = os.path.join(os.path.abspath(source), "engine") + os.sep
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = [e for e in json.load(f)
                   if e["file"].startswith(engine) and "/gpu/probe/" not in e["file"] and only in e["file"]]
    if not entries:
        print("no engine sources in compile_commands.json (configure with CMAKE_EXPORT_COMPILE_COMMANDS)")
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        snippet = os.path.join(tmp, "self_test.cc")
        with open(snippet, "w") as f:
            f.write(SELF_TEST)
        probe = dict(entries[0], file=snippet)
        rc, text = run(clang_command(probe, clang), entries[0]["directory"])
        if rc == 0 or "requires holding mutex 'mu'" not in text:
            print("SELF-TEST FAILED: clang accepted a guarded read without its lock\n" + text)
            return 1
        print("self-test: a guarded read without its lock is refused")

    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run, clang_command(e, clang), e["directory"]): e["file"] for e in entries}
        for fut in concurrent.futures.as_completed(futures):
            rc, text = fut.result()
            if rc != 0:
                failures.append((futures[fut], text))
    for path, text in sorted(failures):
        print(f"--- {os.path.relpath(path, source)}\n{text}")
    print(f"{len(entries)} engine sources analysed with {clang}, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
