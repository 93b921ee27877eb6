"""The op gate: a model passes only if the scorer's TFLite 2.9.1 registers every op at the version it uses."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from kit.contract import opcheck
from kit.assets import make_op_versions
from kit.errors import KitError


def convert(fn, spec, flex: bool = False) -> bytes:
    """A TFLite flatbuffer of `fn`, Flex (SELECT_TF_OPS) allowed when asked."""
    module = tf.Module()
    module.f = tf.function(fn, input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.f.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if flex:
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    return converter.convert()


def with_opcode(model: bytes, name: str, **fields) -> bytes:
    """The model rebuilt with the operator code of builtin `name` changed (object API, then packed again)."""
    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    code = getattr(schema.BuiltinOperator, name)
    matches = [oc for oc in tree.operatorCodes
               if opcheck.builtin_code(oc.deprecatedBuiltinCode, oc.builtinCode) == code]
    assert matches, f"{name} is not in the model"
    for key, value in fields.items():
        assert hasattr(matches[0], key), f"OperatorCodeT has no field {key}"
        setattr(matches[0], key, value)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def builtin_model() -> bytes:
    weights = tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3))
    return convert(lambda x: tf.nn.softmax(tf.matmul(x, weights)), tf.TensorSpec([None, 4], tf.float32))


def test_builtin_model_passes(builtin_model):
    """matmul + softmax converts to builtin ops at versions 2.9.1 registers: no problem, names and uses read."""
    ops = opcheck.model_ops(builtin_model)
    assert {op.name for op in ops} == {"FULLY_CONNECTED", "SOFTMAX"}
    assert all(not op.custom and op.version >= 1 and op.uses == 1 and op.problems == () for op in ops)
    assert opcheck.runtime_problems(builtin_model) == []
    assert opcheck.require_runtime(builtin_model) == ops


def test_flex_op_is_reported():
    """An op converted through SELECT_TF_OPS is a Flex custom op, which the scorer cannot run."""
    model = convert(tf.linalg.inv, tf.TensorSpec([3, 3], tf.float32), flex=True)
    ops = opcheck.model_ops(model)
    assert [(op.name, op.custom) for op in ops] == [("FlexMatrixInverse", True)]
    assert opcheck.runtime_problems(model) == [
        "op FlexMatrixInverse is a Flex (TensorFlow) op: TFLite 2.9.1 runs builtin ops only, "
        "convert with supported_ops=[TFLITE_BUILTINS]"]
    with pytest.raises(KitError, match=r"^model.tflite: the scorer's TFLite 2.9.1 cannot run it: op FlexMatrixInverse"):
        opcheck.require_runtime(model)


def test_version_above_the_max_is_reported(builtin_model):
    """A real model whose FULLY_CONNECTED is bumped past 2.9.1's max (9) fails, naming op, version and max."""
    model = with_opcode(builtin_model, "FULLY_CONNECTED", version=10)
    assert opcheck.runtime_problems(model) == [
        "op FULLY_CONNECTED version 10 needs a runtime newer than TFLite 2.9.1 "
        "(which runs up to version 9; version 10 came in TFLite 2.11.0)"]


def test_patched_version_is_what_a_runtime_resolves(builtin_model):
    """The version byte is what the interpreter looks up: one past every runtime's max is refused at load."""
    from ai_edge_litert import interpreter as litert

    model = with_opcode(builtin_model, "SOFTMAX", version=99)
    with pytest.raises((ValueError, RuntimeError), match="SOFTMAX.*99|99.*SOFTMAX"):
        litert.Interpreter(model_content=model).allocate_tensors()


def test_old_style_opcode_reads_the_same(builtin_model):
    """Models from before the int32 `builtin_code` field keep the code in `deprecated_builtin_code` only."""
    code = schema.BuiltinOperator.SOFTMAX
    model = with_opcode(builtin_model, "SOFTMAX", builtinCode=0, deprecatedBuiltinCode=code)
    assert {op.name for op in opcheck.model_ops(model)} == {"FULLY_CONNECTED", "SOFTMAX"}
    # codes above 127 sit in builtin_code while the int8 field holds the placeholder
    assert opcheck.builtin_code(opcheck.PLACEHOLDER_FOR_GREATER_OP_CODES, schema.BuiltinOperator.GELU) \
        == schema.BuiltinOperator.GELU


@pytest.mark.parametrize("name, version, custom, expected", [
    ("BATCH_MATMUL", 4, False, None),
    ("BATCH_MATMUL", 5, False, "op BATCH_MATMUL version 5 needs a runtime newer than TFLite 2.9.1 "
                               "(which runs up to version 4)"),
    ("FULLY_CONNECTED", 9, False, None),
    ("TRANSPOSE", 6, False, "op TRANSPOSE version 6 needs a runtime newer than TFLite 2.9.1 "
                            "(which runs up to version 5; version 6 came in TFLite 2.12.0)"),
    ("GELU", 2, False, None),
    ("CAST", 5, False, "version 5 came in TFLite 2.12.0"),
    ("ATAN2", 1, False, "op ATAN2 needs TFLite 2.10.0, newer than TFLite 2.9.1"),
    ("STABLEHLO_ADD", 1, False, "op STABLEHLO_ADD is unknown to TFLite 2.9.1"),
    ("BROADCAST_TO", 1, False, "op BROADCAST_TO version 1 is not registered in TFLite 2.9.1 (it runs versions 2-3)"),
    ("TFLite_Detection_PostProcess", 1, True, None),
    ("MyOp", 1, True, "op MyOp is a custom op that TFLite 2.9.1 does not provide"),
])
def test_op_version_table(name, version, custom, expected):
    """Each (op, version) is judged against 2.9.1's table: within range passes, anything else says why."""
    problems = opcheck.op_problems(name, version, custom)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


def test_table_names_its_source_and_fits_the_schema():
    """The packaged table says where it came from, agrees with 2.9's register.cc, and uses real op names."""
    table = opcheck.op_table()
    assert table["runtime"] == "2.9.1"
    assert len(table["source"]["commit"]) == 40 and table["source"]["path"].endswith("runtime_version.cc")
    assert table["cross_check"]["differences"] == []
    names = set(table["max_versions"]) | set(table["excluded"])
    assert make_op_versions.unknown_names(names) == []
    assert all(v >= table["min_versions"].get(op, 1) for op, v in table["max_versions"].items())


def test_other_runtime_is_refused(builtin_model):
    """The kit has one table; asking for another runtime is an error, not a silent 2.9.1 answer."""
    with pytest.raises(KitError, match="no op-version table for TFLite 2.14.0"):
        opcheck.runtime_problems(builtin_model, runtime="2.14.0")


def test_not_a_tflite_file():
    """Bytes without the TFL3 identifier are refused with a one-line reason."""
    with pytest.raises(KitError, match="not a TFLite model"):
        opcheck.model_ops(b"PK\x03\x04 this is a zip")


def test_make_op_versions_rule():
    """The builder keeps versions while their runtime <= the target, stops at the first newer one, and
    drops ops the target does not know; register.cc ranges that differ are listed."""
    source = '''{{{BuiltinOperator_ADD, 1}, "1.5.0"}, {{BuiltinOperator_ADD, 2}, "2.9.0"},
                {{BuiltinOperator_ADD, 3}, "2.10.0"}, {{BuiltinOperator_ADD, 4}, "2.9.0"},
                {{BuiltinOperator_BROADCAST_TO, 2}, "2.5.0"}, {{BuiltinOperator_SIGN, 1}, "2.11.0"}}'''
    derived = make_op_versions.derive(make_op_versions.parse_runtime_map(source), "2.9.1")
    assert derived["max_versions"] == {"ADD": 2, "BROADCAST_TO": 2}
    assert derived["min_versions"] == {"BROADCAST_TO": 2}
    assert derived["newer"] == {"ADD": {"version": 3, "runtime": "2.10.0"}}
    assert derived["excluded"] == {"SIGN": "2.11.0"}
    register = '''AddBuiltin(BuiltinOperator_ADD, Register_ADD(), /* min_version */ 1, /* max_version */ 3);
                  AddBuiltin(BuiltinOperator_BROADCAST_TO, Register_BROADCAST_TO(), 2, 2);
                  AddCustom("Mfcc", tflite::ops::custom::Register_MFCC());'''
    ranges, customs = make_op_versions.parse_register(register)
    assert ranges == {"ADD": (1, 3), "BROADCAST_TO": (2, 2)} and customs == ["Mfcc"]
    assert make_op_versions.cross_check(derived, ranges) == ["ADD: registered (1, 3), derived (1, 2)"]
