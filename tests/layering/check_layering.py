#!/usr/bin/env python3
"""The engine's and the console's module layering, checked against what links.

Reads the module graph CMake writes at configure time (spillway_modules.tsv:
each library, its sources relative to the project root, its links) and
every #include under engine/ and ui/.
Fails when
  - a file includes a header of a library its own library does not link
    (directly or through its links): an include the linker does not back;
  - the links between the engine's libraries form a cycle (a back-edge:
    e.g. pipeline/ reaching up into admission/);
  - a library links another none of whose headers it includes (a link
    that only hides what depends on what);
  - a source file belongs to no library (it would escape the check).
The console's library (spillway_ui) links the control client, not the
engine: an engine header included from ui/ fails the first rule.

Usage: check_layering.py MODULES_TSV SOURCE_DIR [--self-test]
--self-test also proves the check can fail: it adds an upward include
(pipeline -> admission) and an upward link, and expects both reported.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# Header-only files in folders that hold more than one library.
HEADER_OWNER_OVERRIDES = {
    "engine/gpu/inventory.h": "spillway_gpu_core",
    "engine/gpu/nvml_abi.h": "spillway_gpu_core",
    "engine/gpu/gpu_status.h": "spillway_gpu_core",
}
ROOTS = ("engine", "ui")
SKIPPED = (os.path.join("engine", "proto"), os.path.join("engine", "gpu", "probe"))


def walk(source_dir):
    """Every file under the checked roots, relative to the project root."""
    for top in ROOTS:
        for root, _, files in os.walk(os.path.join(source_dir, top)):
            rel_root = os.path.relpath(root, source_dir)
            if rel_root.startswith(SKIPPED):
                continue
            for fn in files:
                yield os.path.normpath(os.path.join(rel_root, fn))


def resolve(inc, source_dir):
    """An #include's file relative to the project root (engine/ is an include root)."""
    for candidate in (os.path.join("engine", inc), inc):
        if os.path.exists(os.path.join(source_dir, candidate)):
            return os.path.normpath(candidate)
    return None


def read_modules(path):
    modules = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            name, srcs, links = (line.split("\t") + ["", ""])[:3]
            modules[name] = {
                "sources": [s for s in srcs.split(",") if s],
                "links": [l for l in links.split(",") if l.startswith("spillway_")],
            }
    return modules


def owner_table(modules, source_dir):
    """Every file (sources and headers) -> its library."""
    owner = {}
    folder_votes = {}
    for name, m in modules.items():
        for src in m["sources"]:
            owner[src] = name
            base, _ = os.path.splitext(src)
            owner[base + ".h"] = name
            folder = os.path.dirname(src)
            folder_votes.setdefault(folder, {}).setdefault(name, 0)
            folder_votes[folder][name] += 1
    owner.update(HEADER_OWNER_OVERRIDES)
    for rel in walk(source_dir):
        if not rel.endswith(".h") or rel in owner:
            continue
        votes = folder_votes.get(os.path.dirname(rel))
        if votes:
            owner[rel] = max(votes, key=votes.get)
    return owner


def closure(modules, name, seen=None):
    seen = set() if seen is None else seen
    for dep in modules.get(name, {}).get("links", []):
        if dep not in seen:
            seen.add(dep)
            closure(modules, dep, seen)
    return seen


def find_cycle(modules):
    state = {}
    stack = []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in modules.get(n, {}).get("links", []):
            if d not in modules:
                continue
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(modules):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def check(modules, source_dir, extra_includes=()):
    problems = []
    cycle = find_cycle(modules)
    if cycle:
        problems.append("link cycle (a back-edge): " + " -> ".join(cycle))
    owner = owner_table(modules, source_dir)
    reach = {name: closure(modules, name) for name in modules}
    includes = []
    for rel, lib in sorted(owner.items()):
        path = os.path.join(source_dir, rel)
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            for inc in INCLUDE.findall(f.read()):
                includes.append((rel, lib, inc))
    includes.extend(extra_includes)
    used = {name: set() for name in modules}
    for rel, lib, inc in includes:
        target = owner.get(resolve(inc, source_dir) or "")
        if target is None and inc.startswith("spillway/v1/"):
            target = "spillway_control_proto" if inc.startswith("spillway/v1/control") else "spillway_proto"
        if target is None or target == lib:
            continue
        used[lib].add(target)
        if target not in reach[lib]:
            problems.append(f"{rel} ({lib}) includes {inc} ({target}), which {lib} does not link")
    for name, m in sorted(modules.items()):
        if not m["sources"]:
            continue  # generated code: its includes are protoc's
        for dep in m["links"]:
            if dep not in used[name]:
                problems.append(f"{name} links {dep} but includes none of its headers")
    for rel in walk(source_dir):
        if rel.endswith(".cc") and rel not in owner:
            problems.append(f"{rel} belongs to no library in the module graph")
    return problems


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__)
        return 2
    modules = read_modules(args[0])
    source_dir = args[1]
    problems = check(modules, source_dir)
    for p in problems:
        print("LAYERING:", p)
    edges = sum(len(m["links"]) for m in modules.values())
    print(f"{len(modules)} libraries, {edges} links between them, {len(problems)} problems")
    if "--self-test" in sys.argv:
        upward = [("engine/pipeline/stage.h", "spillway_pipeline", "admission/admission_queue.h")]
        got = check(modules, source_dir, extra_includes=upward)
        if not any("pipeline/stage.h" in p and "admission/admission_queue.h" in p for p in got):
            print("SELF-TEST: an upward include was not reported")
            return 1
        cyclic = {k: {"sources": v["sources"], "links": list(v["links"])} for k, v in modules.items()}
        cyclic["spillway_pipeline"]["links"].append("spillway_admission")
        if not any(p.startswith("link cycle") for p in check(cyclic, source_dir)):
            print("SELF-TEST: a link back-edge was not reported")
            return 1
        print("self-test: an upward include and a link back-edge are both reported")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
