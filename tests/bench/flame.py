#!/usr/bin/env python3
"""A flame graph (PNG) from `perf script` output, with matplotlib only.

  perf record -F 499 --call-graph dwarf -p PID -o perf.data -- sleep 3
  perf script -i perf.data > stacks.txt
  tests/bench/flame.py stacks.txt --out flame.png --title "spillwayd, 16 connections"

Each sample's stack is folded root first; a frame's width is its share of
all samples; frames under --min-share are dropped. Template arguments are cut
from names so Asio's and Beast's frames fit. Also writes the folded stacks
(`name;name;... count`, the format other flame-graph tools read) beside the
PNG as .folded.
"""
import argparse
import collections
import re
import sys


def short(name):
    """Drops template arguments, argument lists and offsets: `ns::f<...>::g(...)+0x1` -> `ns::f::g`."""
    name = re.sub(r"\+0x[0-9a-f]+$", "", name.strip())
    out, depth = [], 0
    for ch in name:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    s = "".join(out).replace(" (inlined)", "")
    return s if s else name[:40]


KERNEL = set()  # frame names seen in the kernel's symbols


def fold(lines):
    """perf script text -> Counter of root-first stacks (tuples of frame names)."""
    stacks = collections.Counter()
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                stacks[tuple(reversed(frames))] += 1
            frames = []
            continue
        if line.startswith((" ", "\t")):
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
            sym = m.group(1) if m else line.strip()
            if sym == "[unknown]" and m:
                sym = "[" + m.group(2).split("/")[-1] + "]"
            name = short(sym)
            if m and "kernel.kallsyms" in m.group(2):
                KERNEL.add(name)
            frames.append(name)
    if frames:
        stacks[tuple(reversed(frames))] += 1
    return stacks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stacks", help="perf script output ('-' for stdin)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("--min-share", type=float, default=0.01, help="hide frames below this share (default 1 %%)")
    args = ap.parse_args()
    src = sys.stdin if args.stacks == "-" else open(args.stacks, errors="replace")
    stacks = fold(src)
    total = sum(stacks.values())
    if not total:
        sys.exit("no samples in the input")
    with open(args.out.rsplit(".", 1)[0] + ".folded", "w") as f:
        for st, n in stacks.most_common():
            f.write(";".join(st) + f" {n}\n")

    # A tree of frames: (children, count).
    def node():
        return [collections.OrderedDict(), 0]
    root = node()
    for st, n in stacks.items():
        cur = root
        cur[1] += n
        for fr in st:
            cur = cur[0].setdefault(fr, node())
            cur[1] += n

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rects = []  # (x, depth, width, name)

    def walk(n, x, depth):
        for name, child in sorted(n[0].items(), key=lambda kv: -kv[1][1]):
            w = child[1] / total
            if w >= args.min_share:
                rects.append((x, depth, w, name))
                walk(child, x, depth + 1)
            x += w
    walk(root, 0.0, 0)
    depth = max(r[1] for r in rects) + 1 if rects else 1
    fig, ax = plt.subplots(figsize=(16, max(4, 0.22 * depth + 1)))
    for x, d, w, name in rects:
        kernel = name in KERNEL
        color = (0.95, 0.6, 0.3) if kernel else ((0.4, 0.65, 0.9) if "spillway" in name else (0.95, 0.8, 0.35))
        ax.add_patch(plt.Rectangle((x, d), w, 0.95, facecolor=color, edgecolor="white", linewidth=0.3))
        if w > 0.04:
            label = name if len(name) * 0.0055 < w else name[: max(3, int(w / 0.0055)) - 1] + "…"
            ax.text(x + 0.002, d + 0.45, label, fontsize=6, va="center", clip_on=True)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, depth)
    ax.set_yticks([])
    ax.set_xlabel(f"share of {total} samples (blue: spillway, orange: kernel, yellow: libraries)")
    ax.set_title(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {total} samples, {len(rects)} frames drawn")


if __name__ == "__main__":
    main()
