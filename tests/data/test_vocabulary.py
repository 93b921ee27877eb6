"""Your own vocabulary: a data set whose sign map has N signs trains an N-way head, and every command that names
signs names them from that map; the competition's 250-sign map behaves as before (the rest of the suite)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.data import vocabulary
from kit.cli import app
from kit.config import Config
from kit.errors import KitError
from kit.data.landmarks import SIGN_MAP_NAME, sign_names
from tests.runs import synth_and_prepare

runner = CliRunner()
OWN = ("wave", "my-name", "coffee")  # none of them is in the competition's map


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def own_data(root: Path) -> Path:
    """kit synth's first 3 signs by 4 signers, renamed to OWN, with a map of just those 3: a folder as kit capture
    --vocabulary own builds it."""
    synth_and_prepare(root, 3, 4, 3)
    data = root / "data"
    names = dict(zip(sign_names()[:3], OWN))
    with open(data / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(data / "train.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "sign": names[r["sign"]]} for r in rows)
    vocabulary.write_map(data, OWN)
    result = invoke("prepare", "--data", data, "--cache", root / "cache", "--workers", "1")
    assert result.exit_code == 0, result.output
    return data


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A 2-fold run of llama_tiny on the own 3-sign data, exported."""
    root = tmp_path_factory.mktemp("own")
    data = own_data(root)
    run = root / "run"
    result = invoke("train", "--cache", root / "cache", "--out", run, "--folds", "2", "--model", "llama_tiny",
                    "--epochs", "2")
    assert result.exit_code == 0, result.output
    exported = invoke("export", run)
    return data, run, exported


def test_a_map_of_n_signs_trains_an_n_way_head_and_the_run_keeps_the_map(own_run):
    """The config that travels with the weights says 3 outputs; the out-of-fold probabilities have 3 columns; the
    run holds the data's map, and cv.json names the confused signs from it."""
    data, run, _ = own_run
    for path in [run / "config.json", *run.glob("fold*/config.json")]:
        assert json.loads(path.read_text())["model"]["n_classes"] == 3, path
    assert vocabulary.run_signs(run) == OWN
    with np.load(run / "fold0" / "oof.npz") as oof:
        assert oof["probs"].shape[1] == 3
    cv = json.loads((run / "cv.json").read_text())
    assert cv["chance"] == pytest.approx(1 / 3)
    assert all(p["true"] in OWN and p["predicted"] in OWN for p in cv["confused_pairs"])


@pytest.mark.slow
def test_export_passes_every_gate_but_reports_the_own_vocabulary(own_run):
    """kit export of an own-vocabulary run exits 0: every gate passes for 3 outputs, the vocabulary is a note
    ("own vocabulary: 3 signs, not a competition submission"), the map lies beside model.tflite and no
    submission.zip is written."""
    _, run, result = own_run
    assert result.exit_code == 0, result.output
    assert "note  vocabulary: own vocabulary: 3 signs, not a competition submission" in result.output
    assert "FAIL" not in result.output
    export = run / "export"
    assert (export / "model.tflite").is_file() and not (export / "submission.zip").exists()
    assert vocabulary.read_map(export / SIGN_MAP_NAME) == OWN
    info = json.loads((export / "export.json").read_text())
    assert info["n_signs"] == 3 and info["competition"] is False and info["passed"] is True


@pytest.mark.slow
def test_predict_and_evaluate_name_the_run_s_own_signs(own_run):
    """kit predict names the top signs from the map beside the model; kit evaluate scores on the own data with
    chance 1/3."""
    data, run, _ = own_run
    model = run / "export" / "model.tflite"
    first = next((data / "train_landmark_files").glob("*/*.parquet"))
    result = invoke("predict", model, first, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{"):])
    assert [t["sign"] for t in answer["top"]] == [OWN[t["index"]] for t in answer["top"]] and len(answer["top"]) == 3
    assert sum(t["probability"] for t in answer["top"]) == pytest.approx(1, abs=1e-4)
    result = invoke("evaluate", model, "--data", data)
    assert result.exit_code == 0, result.output
    assert "chance 0.333" in result.output


@pytest.mark.slow
def test_submit_refuses_an_own_vocabulary_in_one_line(own_run):
    """kit submit (a dry run too) refuses a model of your own signs: Kaggle would score it wrong on every sign."""
    _, run, _ = own_run
    result = invoke("submit", run, "--dry-run")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {run / 'export' / 'model.tflite'}: own vocabulary (3 signs), not a competition submission: kit "
        "submit sends only models of the competition's 250 signs (kit predict runs this one)")


@pytest.mark.slow
def test_kit_runs_names_the_vocabulary(own_run):
    """kit runs shows the model with its number of signs when they are not the competition's."""
    _, run, _ = own_run
    result = invoke("runs", run, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["model"] == "llama_tiny, 3 signs"


def test_n_classes_follows_the_map_and_a_hand_set_mismatch_is_refused():
    """model.n_classes is set from the data's map; one set by hand that disagrees is an error naming the fix."""
    assert vocabulary.with_signs(Config(), OWN, "cache").model.n_classes == 3
    assert vocabulary.with_signs(Config(), sign_names(), "cache").model.n_classes == 250
    cfg = vocabulary.with_signs(Config(), OWN, "cache")
    with pytest.raises(KitError, match=r"model.n_classes=3, but cache holds 250 signs: kit train sets"):
        vocabulary.with_signs(cfg, sign_names(), "cache")


def test_a_model_without_its_map_is_named_or_refused(tmp_path):
    """The names of a model file's outputs: the map beside it; else the competition's for 250 outputs; else an
    error that says which file to put beside it."""
    model = tmp_path / "model.tflite"
    assert vocabulary.model_signs(model, 250) == sign_names()
    with pytest.raises(KitError, match="has 3 outputs .* no sign_to_prediction_index_map.json beside it"):
        vocabulary.model_signs(model, 3)
    vocabulary.write_map(tmp_path, OWN)
    assert vocabulary.model_signs(model, 3) == OWN
    with pytest.raises(KitError, match="names 3 signs but .* has 250 outputs"):
        vocabulary.model_signs(model, 250)
