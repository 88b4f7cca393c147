#!/usr/bin/env python3
"""Writes docs/config.md from the comments in engine/proto/spillway/v1/config.proto.

Run after changing the schema: python3 docs/tools/gen_config_md.py
(tests/engine/config/config_doc_test checks that every field is documented.)
"""
import re
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
proto = (root / "engine/proto/spillway/v1/config.proto").read_text()

messages = {}  # name -> (doc, [(field, type, repeated, doc)])
enums = {}     # name -> (doc, [(value, doc)])
order = []
comment = []
current = None
kind = None
for raw in proto.splitlines():
    line = raw.strip()
    if line.startswith("//"):
        comment.append(line[2:].strip())
        continue
    m = re.match(r"(message|enum) (\w+) \{", line)
    if m:
        kind, current = m.group(1), m.group(2)
        (messages if kind == "message" else enums)[current] = (" ".join(comment), [])
        order.append((kind, current))
        comment = []
        continue
    if line == "}":
        current = None
        comment = []
        continue
    if current and kind == "message":
        f = re.match(r"(repeated )?(\w+) (\w+) = \d+(?: \[\(range\) = \{([^}]*)\}\])?;", line)
        if f:
            doc = " ".join(comment)
            if f.group(4):  # (spillway.v1.range) bounds, enforced by validation
                bounds = dict(kv.split(":") for kv in f.group(4).replace(" ", "").split(","))
                if "min" in bounds and "max" in bounds:
                    doc += f" Range: {bounds['min']}–{bounds['max']}."
                elif "min" in bounds:
                    doc += f" At least {bounds['min']} when set."
                else:
                    doc += f" At most {bounds['max']}."
            messages[current][1].append((f.group(3), f.group(2), bool(f.group(1)), doc))
        comment = []
    elif current and kind == "enum":
        e = re.match(r"(\w+) = \d+;\s*(//\s*(.*))?", line)
        if e:
            enums[current][1].append((e.group(1), e.group(3) or " ".join(comment)))
        comment = []
    else:
        if not line:
            comment = []

scalar = {"string": "string", "uint32": "integer ≥ 0", "uint64": "integer ≥ 0", "int32": "integer",
          "int64": "integer", "bool": "true/false", "double": "number", "float": "number"}

out = ["# Configuration reference", "",
       "Generated from `engine/proto/spillway/v1/config.proto` by `docs/tools/gen_config_md.py`;",
       "edit the proto's comments, not this file.", "",
       "Config files are YAML whose keys are the field names below. Unknown keys are",
       "errors (with a did-you-mean), and every error is reported at once with its field",
       "path and `file:line:column`. Validate a file with `spillwayd --check-config FILE`;",
       "print the embedded default with `spillwayd --print-default-config`.", ""]
for kind, name in order:
    if kind == "message":
        doc, fields = messages[name]
        out += [f"## {name}", ""]
        if doc:
            out += [doc, ""]
        out += ["| field | type | meaning |", "|---|---|---|"]
        for fname, ftype, rep, fdoc in fields:
            t = scalar.get(ftype, f"[{ftype}](#{ftype.lower()})")
            if rep:
                t = f"list of {t}"
            cell = fdoc.replace("|", "\\|")
            out.append(f"| `{fname}` | {t} | {cell} |")
        out.append("")
    else:
        doc, values = enums[name]
        out += [f"## {name}", "", doc, "", "| value | meaning |", "|---|---|"]
        for v, d in values:
            if v.endswith("UNSPECIFIED"):
                continue
            out.append(f"| `{v.lower()}` | {d} |")
        out.append("")
(root / "docs/config.md").write_text("\n".join(out))
print("wrote docs/config.md")
