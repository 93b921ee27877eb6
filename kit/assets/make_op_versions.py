"""Build kit/assets/tflite_2_9_op_versions.json: the op versions the scorer's TFLite 2.9.1 runtime can run.

Run from the repository root with a TensorFlow source tree (or a file holding its op-version map) at hand:

    python kit/assets/make_op_versions.py RUNTIME_VERSION_CC --commit SHA --register REGISTER_CC
        --register-source REPO@SHA [--tree-version TEXT] [--runtime 2.9.1] [--out PATH]

RUNTIME_VERSION_CC is TensorFlow's `tensorflow/lite/tools/versioning/runtime_version.cc`: a map from
{BuiltinOperator, op version} to the first TFLite runtime that runs it ("2.9.0"). Its own test checks that
every version the kernels register has an entry, so a tree newer than the runtime lists everything the runtime
knows. The rule, per op: walk its versions upward from the lowest listed one and keep them while their runtime
is <= --runtime; the last kept is the op's max version. An op whose lowest version needs a newer runtime is
left out (the runtime does not know it at all); an op whose versions start above 1 (BROADCAST_TO starts at 2:
version 1 was rolled back) gets an entry in `min_versions`.

REGISTER_CC is `tensorflow/lite/kernels/register.cc` of a tree at the runtime's own version: its
`AddBuiltin(op, kernel, min, max)` calls are what the runtime's resolver really accepts. Every op and range is
compared with the derived table and each difference is recorded (and printed); its `AddCustom` names become
`custom_ops`, the few custom ops the runtime resolves without a delegate.

The committed table comes from runtime_version.cc of tensorflow/tensorflow at f3ddd831d6e1 (version.h there
says 2.13.0, 2023-02-24: new enough to list every version up to 2.13), cross-checked against register.cc of
nxp-imx/tensorflow-imx at 0cef4cba67d5, a 2.9-era tree (it registers GELU and DYNAMIC_UPDATE_SLICE, which
came in 2.9.0, and none of ATAN2, RELU_0_TO_1, UNSORTED_SEGMENT_*, which came in 2.10.0); the two agree on
all 147 ops and every version range:

    python kit/assets/make_op_versions.py runtime_version.cc --commit f3ddd831d6e108d9a79f7bc37ce9439f91b58d7b \
        --tree-version "2.13.0 (version.h at that commit; TF_GRAPH_DEF_VERSION 1417, 2023-02-24)" \
        --register register.cc --register-source "nxp-imx/tensorflow-imx@0cef4cba67d52d068879645c4750f592b6141d15 ..."
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

MAP_ENTRY = re.compile(r'\{\{BuiltinOperator_(\w+),\s*(\d+)\},\s*"([\d.]+)"\}')
ADD_BUILTIN = re.compile(r"AddBuiltin\(\s*BuiltinOperator_(\w+)\s*,\s*[\w:]+\(\)\s*(?:,\s*(\d+)\s*,\s*(\d+)\s*)?\)")
ADD_CUSTOM = re.compile(r'AddCustom\(\s*"(\w+)"')
OUT = Path(__file__).with_name("tflite_2_9_op_versions.json")


def version_key(text: str) -> tuple[int, ...]:
    """'2.10.0' -> (2, 10, 0): runtime versions compare numerically, part by part."""
    return tuple(int(part) for part in text.split("."))


def parse_runtime_map(text: str) -> dict[str, dict[int, str]]:
    """{op: {version: first runtime}} from the op_version_map of runtime_version.cc."""
    table: dict[str, dict[int, str]] = {}
    for op, version, runtime in MAP_ENTRY.findall(text):
        table.setdefault(op, {})[int(version)] = runtime
    if not table:
        raise SystemExit("no {{BuiltinOperator_X, N}, \"R\"} entry found: is this runtime_version.cc?")
    return table


def derive(table: dict[str, dict[int, str]], runtime: str) -> dict:
    """Apply the rule of the module docstring: max and (when not 1) min version per op, and what is newer."""
    limit = version_key(runtime)
    max_versions, min_versions, newer, excluded = {}, {}, {}, {}
    for op in sorted(table):
        versions = sorted(table[op])
        kept = []
        for v in versions:
            if version_key(table[op][v]) > limit:
                newer[op] = {"version": v, "runtime": table[op][v]}
                break
            kept.append(v)
        if not kept:
            excluded[op] = table[op][versions[0]]
            newer.pop(op)
            continue
        max_versions[op] = kept[-1]
        if kept[0] != 1:
            min_versions[op] = kept[0]
    return {"max_versions": max_versions, "min_versions": min_versions, "newer": newer, "excluded": excluded}


def parse_register(text: str) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """{op: (min, max)} of the AddBuiltin calls (no range given means 1..1) and the AddCustom names."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    ranges = {op: (int(lo or 1), int(hi or 1)) for op, lo, hi in ADD_BUILTIN.findall(text)}
    return ranges, sorted(ADD_CUSTOM.findall(text))


def cross_check(derived: dict, ranges: dict[str, tuple[int, int]]) -> list[str]:
    """Every way the registered ranges differ from the derived table (empty when they agree)."""
    diffs = []
    for op in sorted(set(ranges) | set(derived["max_versions"])):
        if op not in ranges:
            diffs.append(f"{op}: derived max {derived['max_versions'][op]}, not registered")
        elif op not in derived["max_versions"]:
            diffs.append(f"{op}: registered {ranges[op]}, not derived")
        else:
            want = (derived["min_versions"].get(op, 1), derived["max_versions"][op])
            if ranges[op] != want:
                diffs.append(f"{op}: registered {ranges[op]}, derived {want}")
    return diffs


def unknown_names(names) -> list[str]:
    """Names the installed TFLite schema does not know: a typo in the source would land here."""
    from ai_edge_litert import schema_py_generated as schema

    return sorted(n for n in names if not hasattr(schema.BuiltinOperator, n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runtime_version_cc", type=Path)
    ap.add_argument("--commit", required=True, help="tensorflow/tensorflow commit the file comes from")
    ap.add_argument("--tree-version", default="", help="what version.h says at that commit")
    ap.add_argument("--register", type=Path, required=True, help="register.cc of a tree at the runtime's version")
    ap.add_argument("--register-source", required=True, help="REPO@COMMIT the register.cc comes from")
    ap.add_argument("--runtime", default="2.9.1")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    table = parse_runtime_map(args.runtime_version_cc.read_text())
    derived = derive(table, args.runtime)
    typos = unknown_names(table)
    if typos:
        raise SystemExit(f"names unknown to the installed TFLite schema: {typos}")
    doc = {
        "runtime": args.runtime,
        "source": {"repo": "tensorflow/tensorflow", "path": "tensorflow/lite/tools/versioning/runtime_version.cc",
                   "commit": args.commit, "tree_version": args.tree_version,
                   "entries": sum(len(v) for v in table.values())},
        "rule": (f"per op, walk its listed versions upward from the lowest and keep them while their first runtime "
                 f"is <= {args.runtime}; max_versions holds the last kept, min_versions the first when it is not 1; "
                 f"ops whose lowest version needs a newer runtime are left out (excluded: op -> that runtime); "
                 f"newer: the first version past the max and the runtime that brought it"),
        "generated_by": "kit/assets/make_op_versions.py",
    }
    ranges, customs = parse_register(args.register.read_text())
    diffs = cross_check(derived, ranges)
    for line in diffs:
        print(f"cross-check: {line}", file=sys.stderr)
    doc["cross_check"] = {"path": "tensorflow/lite/kernels/register.cc", "source": args.register_source,
                          "registered_ops": len(ranges), "differences": diffs}
    doc["custom_ops"] = customs
    doc.update(derived)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}: {len(derived['max_versions'])} ops runnable by TFLite {args.runtime}, "
          f"{len(derived['excluded'])} excluded, {len(derived['newer'])} capped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
