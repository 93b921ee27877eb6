"""Every way a submission failed on Kaggle is refused here, each with its own message."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from typer.testing import CliRunner

from kit.cli import app
from kit.contract.gates import check_model, failures

runner = CliRunner()


def contract_model(body, name: str = "inputs", output: str = "outputs", constant=None, flex: bool = False) -> bytes:
    """A model with signature serving_default whose output is body(inputs[, constant])."""
    module = tf.Module()
    module.table = None if constant is None else tf.constant(constant)

    @tf.function(input_signature=[tf.TensorSpec([None, 543, 3], tf.float32, name=name)])
    def serving_default(x):
        return {output: body(x) if constant is None else body(x, module.table)}

    module.serving_default = serving_default
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serving_default.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
        [tf.lite.OpsSet.SELECT_TF_OPS] if flex else [])
    return converter.convert()


def safe_mean(x):
    x = tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)
    return tf.reduce_mean(x)


def good(x, classes: int = 250):
    return tf.nn.softmax(tf.fill([classes], safe_mean(x)) + tf.range(classes, dtype=tf.float32) / classes)


def failed_gate(model: bytes) -> dict:
    return {g.name: g.detail for g in failures(check_model(model))}


def test_a_well_formed_model_passes_every_gate():
    """A small builtin-only model with the contract signature passes all gates."""
    gates = check_model(contract_model(good))
    assert [g.name for g in gates] == ["signature", "ops", "size", "finite", "latency"]
    assert not failures(gates)


def test_flex_op_is_refused():
    """A graph that needs TF Select (Flex) ops is refused: the scorer has no Flex delegate."""
    model = contract_model(lambda x: good(x) + 1e-9 * tf.reduce_sum(tf.linalg.inv(tf.eye(3) + safe_mean(x))), flex=True)
    failed = failed_gate(model)
    assert "op FlexMatrixInverse is a Flex (TensorFlow) op" in failed["ops"]


def test_wrong_input_name_is_refused():
    """An input named anything but `inputs` fails the signature gate, naming what it found."""
    failed = failed_gate(contract_model(good, name="frames"))
    assert failed == {"signature": "inputs should be ['inputs'], found ['frames']"}


def test_wrong_number_of_classes_is_refused():
    """An output of 43 classes fails the signature gate with the shape it found."""
    failed = failed_gate(contract_model(lambda x: good(x, 43)))
    assert failed == {"signature": "output 'outputs' should have shape [250], found [43]"}


def test_a_dynamic_output_shape_with_250_values_passes_with_a_note():
    """The scorer takes the argmax of whatever `outputs` holds: a public competition model whose output's shape
    signature is [-1] (its graph lost the static shape) yet returns 250 values passes every gate, with a note."""
    model = contract_model(lambda x: tf.boolean_mask(good(x), good(x) > -1.0))  # data-dependent: shape [-1]
    gates = check_model(model)
    assert not failures(gates)
    signature = next(g for g in gates if g.name == "signature")
    assert "declares shape [None], not a fixed [n]" in signature.detail and signature.data["note"]


def test_a_dynamic_output_shape_with_the_wrong_count_at_run_time_is_refused():
    """A dynamic output that returns 249 values for a real input fails the finite gate, which runs it."""
    model = contract_model(lambda x: tf.boolean_mask(good(x), good(x) > tf.reduce_min(good(x))))
    failed = failed_gate(model)
    assert list(failed) == ["finite"]
    assert "18 frames (a real file's median length) (output 'outputs' gave 249 values for a 18-frame input, " \
           "where the contract needs 250)" in failed["finite"]


def test_a_graph_that_breaks_on_frames_without_a_face_is_refused():
    """Real files have frames whose face is all NaN: a graph that reads face points without removing NaN gives NaN
    there, and the finite gate names those cases (not the hand cases, which it handles)."""
    face_first = lambda x: tf.nn.softmax(tf.fill([250], tf.reduce_mean(x[:, :468])) + safe_mean(x[:, 468:]))
    failed = failed_gate(contract_model(face_first))
    assert list(failed) == ["finite"]
    assert "frames without a face" in failed["finite"] and "no face in any frame" in failed["finite"]
    assert "no hand in any frame" not in failed["finite"]


def test_model_over_40_mb_is_refused():
    """A model over 40 MB fails the size gate (built cheaply: one 42 MB constant table)."""
    table = np.ones((10_500_000,), np.float32)
    index = lambda x: tf.cast(tf.abs(safe_mean(x)), tf.int32) + tf.range(250)  # data-dependent: not folded away
    model = contract_model(lambda x, t: good(x) + 1e-9 * tf.gather(t, index(x)), constant=table)
    failed = failed_gate(model)
    assert list(failed) == ["size"]
    assert "over the 40 MB limit" in failed["size"]


def test_nan_path_is_refused():
    """A graph that averages landmarks without removing NaN gives NaN on missing hands: the finite gate fails."""
    failed = failed_gate(contract_model(lambda x: tf.nn.softmax(tf.fill([250], tf.reduce_mean(x)))))
    assert list(failed) == ["finite"]
    assert "no hand in any frame" in failed["finite"]


def test_kit_check_reports_gates_and_exits_1_on_failure(tmp_path):
    """`kit check` prints every gate and ends with one Error line naming the failed gate."""
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(contract_model(lambda x: good(x, 43)))
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "FAIL  signature" in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {bad}: gate 'signature' failed: output 'outputs' should have shape [250], found [43]")
    ok = tmp_path / "ok.tflite"
    ok.write_bytes(contract_model(good))
    assert runner.invoke(app, ["check", str(ok)]).exit_code == 0


def test_budget_counts_the_members_that_still_fit():
    """With the safety factor, a member costs its share of the measured mean; the room left is whole members,
    negative when the ensemble itself is over the budget."""
    from kit.contract.gates import BUDGET_SAFETY, budget_room

    assert BUDGET_SAFETY > 1
    assert budget_room(mean_ms=12.0, members=3, budget_ms=100.0, safety=1.5) == 13  # 66.7 ms / 4 ms = 16 members
    assert budget_room(mean_ms=60.0, members=3, budget_ms=100.0, safety=1.5) == 0
    assert budget_room(mean_ms=90.0, members=3, budget_ms=100.0, safety=1.5) == -1


def test_latency_over_the_budget_fails_in_one_line_and_under_it_says_the_room():
    """kit export --budget-ms: an ensemble whose mean x safety breaks the budget fails the latency gate with one
    line saying by how many members; one under it passes and says how many more would fit."""
    from kit.contract.gates import latency_gate, probe_sequences

    model = contract_model(good)
    probes = probe_sequences(8)
    over = latency_gate(model, probes, budget_ms=1e-6, members=3)
    assert not over.ok and "breaks the budget of 1e-06 ms" in over.detail and "\n" not in over.detail
    under = latency_gate(model, probes, budget_ms=1e6, members=3)
    assert under.ok and "room for" in under.detail and under.data["more_members"] > 0


def test_latency_is_judged_on_plain_kernels_as_the_scorer_runs(monkeypatch):
    """The scorer's runtime, called with a new length each sequence, gets little or nothing from XNNPACK: the gate
    passes or fails on the plain kernels' mean (the budget's room too), reports XNNPACK beside it, and says when
    the graph could not be delegated at all, naming where its sizes learned while running start."""
    import kit.contract.gates as gates

    monkeypatch.setattr(gates, "call_times", lambda model, seqs, xnnpack, n_classes: np.full(len(seqs),
                                                                                           5.0 if xnnpack else 150.0))
    monkeypatch.setattr(gates.tflite, "sized_when_run", lambda model: (0, []))
    slow = gates.latency_gate(b"", gates.probe_sequences(4))
    assert not slow.ok and slow.data["judged"] == "builtin"
    assert slow.detail.startswith("mean 150.00 ms, p95 150.00 ms with plain kernels")
    assert "5.00 ms with XNNPACK" in slow.detail and "cannot delegate" not in slow.detail
    budget = gates.latency_gate(b"", gates.probe_sequences(4), budget_ms=100.0, members=3)
    assert not budget.ok and "mean 150.00 ms with plain kernels" in budget.detail
    monkeypatch.setattr(gates.tflite, "sized_when_run", lambda model: (12, ["WHERE"]))
    dynamic = gates.latency_gate(b"", gates.probe_sequences(4), limit_ms=1000.0)
    assert dynamic.ok and "12 tensors are sized only while it runs (from WHERE)" in dynamic.detail


def test_sizes_learned_while_the_graph_runs_are_found_where_they_start():
    """A graph sized by its input's shape alone has none; boolean_mask (a reshape to a computed shape, then WHERE)
    has them, counted downstream, and the ops where they start are named."""
    from kit.contract.tflite import sized_when_run

    def convert(fn):
        class Graph(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None, 543, 3], tf.float32, name="inputs")])
            def serve(self, x):
                return {"outputs": fn(x)}

        graph = Graph()
        converter = tf.lite.TFLiteConverter.from_concrete_functions([graph.serve.get_concrete_function()], graph)
        return converter.convert()

    assert sized_when_run(convert(lambda x: tf.reshape(x, [-1, 1629]) * 2.0)) == (0, [])
    late, origins = sized_when_run(convert(lambda x: tf.boolean_mask(x, x[:, 0, 0] > 0.4) * 2.0))
    assert late >= 4 and "RESHAPE" in origins


def test_parity_probes_the_lengths_where_padding_could_matter():
    """1, 2 and 7 frames, one frame either side of each max_len and max_len itself, and 500 (subsampled)."""
    from kit.contract.gates import parity_lengths

    assert parity_lengths([64, 384]) == [1, 2, 7, 63, 64, 65, 383, 384, 385, 500]
