"""Prove that a TFLite model uses only ops, and op versions, that the scorer's TFLite 2.9.1 runtime can run.

The interpreter installed here is years newer than the scorer's, so a model that loads here can still fail
there with "Didn't find op for builtin opcode 'X' version 'N'". The converter picks each op's version from
what the op does (its types, ranks, options), so a harmless-looking change can raise one. This module reads
the model's operator codes straight from the flatbuffer and compares them with the table of what 2.9.1
registers (kit/assets/tflite_2_9_op_versions.json, built and documented by kit/assets/make_op_versions.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from kit.errors import KitError

RUNTIME = "2.9.1"
TABLE = Path(__file__).resolve().parents[1] / "assets" / "tflite_2_9_op_versions.json"
# Codes above 127 no longer fit the old int8 field: the converter writes this there and the real code in
# `builtin_code`; models older than that field carry the code only in `deprecated_builtin_code`.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127


@dataclass(frozen=True)
class OpInfo:
    """One operator code of the model: a builtin (`name` like "FULLY_CONNECTED") or a custom op."""

    name: str
    version: int
    custom: bool = False
    uses: int = 0  # how many operators of the graph (all subgraphs) run this code
    problems: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" + (" (custom)" if self.custom else "")


@lru_cache(maxsize=1)
def op_table() -> dict:
    """The packaged table of TFLite 2.9.1's op versions, with its provenance."""
    return json.loads(TABLE.read_text())


def _schema():
    # The schema module shipped with ai-edge-litert: plain flatbuffers accessors, no TensorFlow import.
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@lru_cache(maxsize=1)
def _builtin_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {code: name for name, code in vars(ops).items() if not name.startswith("_")}


def builtin_code(deprecated_code: int, code: int) -> int:
    """The operator's builtin code, read the way the runtime reads it: the larger of the two fields."""
    return max(code, deprecated_code)


def _read_codes(model: bytes) -> list[tuple[str, int, bool, int]]:
    """(name, version, custom, uses) per operator code of the flatbuffer."""
    schema = _schema()
    if len(model) < 8 or not schema.Model.ModelBufferHasIdentifier(model, 0):
        raise KitError("not a TFLite model: the flatbuffer identifier 'TFL3' is missing")
    root = schema.Model.GetRootAs(model, 0)
    uses = [0] * root.OperatorCodesLength()
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            uses[graph.Operators(i).OpcodeIndex()] += 1
    custom_code = schema.BuiltinOperator.CUSTOM
    codes = []
    for i in range(root.OperatorCodesLength()):
        oc = root.OperatorCodes(i)
        code = builtin_code(oc.DeprecatedBuiltinCode(), oc.BuiltinCode())
        if code == custom_code:
            codes.append(((oc.CustomCode() or b"").decode("utf-8", "replace"), oc.Version(), True, uses[i]))
        else:
            codes.append((_builtin_names().get(code, f"BUILTIN_{code}"), oc.Version(), False, uses[i]))
    return codes


def op_problems(name: str, version: int, custom: bool = False, runtime: str = RUNTIME) -> list[str]:
    """Why TFLite `runtime` cannot run this op at this version (empty when it can)."""
    table = _table_for(runtime)
    if custom:
        if name.startswith("Flex"):
            return [f"op {name} is a Flex (TensorFlow) op: TFLite {runtime} runs builtin ops only, "
                    f"convert with supported_ops=[TFLITE_BUILTINS]"]
        if name in table["custom_ops"]:
            return []
        return [f"op {name} is a custom op that TFLite {runtime} does not provide"]
    if name in table["excluded"]:
        return [f"op {name} needs TFLite {table['excluded'][name]}, newer than TFLite {runtime}"]
    if name not in table["max_versions"]:
        return [f"op {name} is unknown to TFLite {runtime}"]
    top, bottom = table["max_versions"][name], table["min_versions"].get(name, 1)
    if version > top:
        newer = table["newer"].get(name)
        came = f"; version {newer['version']} came in TFLite {newer['runtime']}" if newer else ""
        return [f"op {name} version {version} needs a runtime newer than TFLite {runtime} "
                f"(which runs up to version {top}{came})"]
    if version < bottom:
        return [f"op {name} version {version} is not registered in TFLite {runtime} (it runs versions {bottom}-{top})"]
    return []


def _table_for(runtime: str) -> dict:
    table = op_table()
    if runtime != table["runtime"]:
        raise KitError(f"no op-version table for TFLite {runtime}; the kit knows TFLite {table['runtime']}")
    return table


def model_ops(model: bytes, runtime: str = RUNTIME) -> list[OpInfo]:
    """Every operator code of a .tflite flatbuffer, in the model's order, with what `runtime` lacks for it."""
    return [OpInfo(name, version, custom, uses, tuple(op_problems(name, version, custom, runtime)))
            for name, version, custom, uses in _read_codes(model)]


def runtime_problems(model: bytes, runtime: str = RUNTIME) -> list[str]:
    """One line per op that TFLite `runtime` cannot run (empty: every op and version is registered there)."""
    return [p for op in model_ops(model, runtime) for p in op.problems]


def require_runtime(model: bytes, where: str = "model.tflite", runtime: str = RUNTIME) -> list[OpInfo]:
    """The model's ops when TFLite `runtime` can run them all; otherwise KitError naming each problem."""
    ops = model_ops(model, runtime)
    problems = [p for op in ops for p in op.problems]
    if problems:
        raise KitError(f"{where}: the scorer's TFLite {runtime} cannot run it: {'; '.join(problems)}")
    return ops
