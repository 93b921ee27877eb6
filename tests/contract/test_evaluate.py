"""`kit evaluate` scores any TFLite model exactly as the competition's scorer does."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from kit.cli import app
from kit.contract.evaluate import evaluate

runner = CliRunner()


def frame_count_model(classes: int = 250, name: str = "inputs") -> bytes:
    """Someone else's model: predicts class (n_frames mod 5), so its accuracy is input-dependent and known."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, 543, 3], tf.float32, name=name)])
    def serving_default(x):
        guess = tf.math.floormod(tf.shape(x)[0], 5)
        return {"outputs": tf.one_hot(guess, classes) + 0.0 * tf.reduce_sum(tf.where(tf.math.is_nan(x), 0.0, x))}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving_default.get_concrete_function()], module)
    return converter.convert()


@pytest.fixture(scope="module")
def synth_data(synthetic):
    return synthetic(5, 3, 3) / "data"


def independent_accuracy(model: bytes, data, rows: pd.DataFrame) -> float:
    """The scorer's loop written out with ai_edge_litert directly, sharing no code with kit."""
    from ai_edge_litert.interpreter import Interpreter

    runner_ = Interpreter(model_content=model).get_signature_runner("serving_default")
    index = json.loads((data / "sign_to_prediction_index_map.json").read_text())
    hits = []
    for path, sign in zip(rows["path"], rows["sign"]):
        xyz = pd.read_parquet(data / path, columns=["x", "y", "z"])
        frames = xyz.values.reshape(len(xyz) // 543, 543, 3).astype(np.float32)
        hits.append(int(np.argmax(runner_(inputs=frames)["outputs"])) == index[sign])
    return float(np.mean(hits))


def test_accuracy_matches_an_independent_scorer_loop(synth_data, tmp_path):
    """On every row of train.csv, kit evaluate's accuracy equals a hand-written ai_edge_litert loop's."""
    model = tmp_path / "model.tflite"
    model.write_bytes(frame_count_model())
    result = evaluate(model, synth_data)
    rows = pd.read_csv(synth_data / "train.csv")
    assert result.n == len(rows)
    assert result.accuracy == pytest.approx(independent_accuracy(model.read_bytes(), synth_data, rows))
    assert 0 < result.accuracy < 1, "the model is right on some sequences only"
    assert set(result.participant_accuracy) == {str(p) for p in rows["participant_id"].unique()}
    assert result.mean_ms > 0 and result.p95_ms >= result.mean_ms * 0.5


def test_evaluate_reads_submission_zip_and_filters_signers(synth_data, tmp_path):
    """A submission.zip is scored like its model.tflite; --participants and --limit narrow the rows."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "submission.zip", "w") as zf:
        zf.writestr("model.tflite", frame_count_model())
    pid = str(pd.read_csv(synth_data / "train.csv")["participant_id"].iloc[0])
    result = runner.invoke(app, ["evaluate", str(tmp_path / "submission.zip"), "--data", str(synth_data),
                                 "--participants", pid, "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert "on 4 sequences" in result.output and f"{pid}:" in result.output


def test_real_samples_are_scored(real_samples, tmp_path):
    """The five labelled real samples (cloud, owie, hello, thankyou x2; three with frames without a face) load and
    score through the scorer's loader."""
    data = tmp_path / "real"
    shutil.copytree(real_samples / "train_landmark_files", data / "train_landmark_files")
    shutil.copy(real_samples / "sign_to_prediction_index_map.json", data)
    with open(real_samples / "samples.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["sign"]]
    pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
    (tmp_path / "m.tflite").write_bytes(frame_count_model())
    result = evaluate(tmp_path / "m.tflite", data)
    assert result.n == 5
    assert result.accuracy == independent_accuracy(frame_count_model(), data, pd.DataFrame(rows))


@pytest.mark.parametrize("model,message", [
    (lambda: frame_count_model(classes=43), "output 'outputs' should have shape [250], found [43]"),
    (lambda: frame_count_model(name="x"), "inputs should be ['inputs'], found ['x']"),
])
def test_model_off_contract_is_refused_naming_what_it_found(synth_data, tmp_path, model, message):
    """A model whose signature does not fit the contract is refused with one line saying what it has instead."""
    path = tmp_path / "m.tflite"
    path.write_bytes(model())
    result = runner.invoke(app, ["evaluate", str(path), "--data", str(synth_data)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {path}: does not fit the competition contract: {message}"


def test_missing_data_names_the_fix(tmp_path):
    """Evaluating against a folder without train.csv says what --data must be."""
    (tmp_path / "m.tflite").write_bytes(frame_count_model())
    result = runner.invoke(app, ["evaluate", str(tmp_path / "m.tflite"), "--data", str(tmp_path / "none")])
    assert result.exit_code == 1 and "train.csv: missing" in result.output


def test_a_run_still_being_written_is_scored_as_it_is_and_said_so(tmp_path, capsys):
    """kit evaluate reads a run that kit train (or kit export) is writing: it says so, for the run and its export
    folder, and scores the files as they are (kit.runlock)."""
    from kit.contract.evaluate import say_writers
    from tests.test_runlock import hold

    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "submission.zip").write_bytes(b"zip")
    writer = hold(run, "kit train --full")
    try:
        say_writers(run)
    finally:
        writer.kill()
        writer.wait()
    err = capsys.readouterr().err
    assert f"note: {run} is still being written by kit train --full (PID {writer.pid}" in err
    assert f"scoring {run / 'export' / 'submission.zip'} as it is now" in err
    say_writers(run)  # the writer is gone: nothing to say
    assert capsys.readouterr().err == ""
