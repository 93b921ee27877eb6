"""`kit train` through the real CLI on a small synthetic set: the run directory holds what export and users need."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from tests.runs import synth_and_prepare

runner = CliRunner()


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    return synth_and_prepare(tmp_path_factory.mktemp("small"), 5, 4, 2)


@pytest.fixture(scope="module")
def trained(small_cache):
    run = small_cache / "run"
    result = runner.invoke(app, ["train", "--cache", str(small_cache / "cache"), "--out", str(run), "--folds", "2",
                                 "--epochs", "2", "--model", "llama_tiny", "--set", "preprocess.max_len=16"])
    assert result.exit_code == 0, result.output
    return run


def test_every_fold_writes_config_weights_history_and_oof(trained):
    """Each fold keeps its resolved config, best weights, a history row per epoch and OOF predictions."""
    for k in (0, 1):
        fold = trained / f"fold{k}"
        assert json.loads((fold / "config.json").read_text())["preprocess"]["max_len"] == 16
        assert (fold / "model.weights.h5").stat().st_size > 0
        assert len((fold / "history.csv").read_text().strip().splitlines()) == 1 + 2
        oof = np.load(fold / "oof.npz")
        assert oof["probs"].shape == (len(oof["labels"]), 250)
        np.testing.assert_allclose(oof["probs"].sum(-1), 1, atol=1e-4)


def test_oof_covers_every_sequence_once_and_no_signer_leaks(trained):
    """Out-of-fold predictions cover each cached sequence exactly once; a fold's signers are all held out."""
    folds = np.loadtxt(trained / "folds.csv", delimiter=",", skiprows=1, dtype=np.int64)
    seen = np.concatenate([np.load(trained / f"fold{k}" / "oof.npz")["sequence_ids"] for k in (0, 1)])
    assert sorted(seen) == sorted(folds[:, 0])
    for k in (0, 1):
        held = set(np.load(trained / f"fold{k}" / "oof.npz")["participant_ids"])
        trained_on = set(folds[folds[:, 2] != k, 1])
        assert not held & trained_on


def test_cv_json_and_kit_cv_merge(trained):
    """cv.json holds per-fold and overall accuracy; `kit cv` rebuilds it from the folds present."""
    cv = json.loads((trained / "cv.json").read_text())
    assert set(cv["fold_accuracy"]) == {"0", "1"} and 0 <= cv["oof_accuracy"] <= 1
    (trained / "cv.json").unlink()
    result = runner.invoke(app, ["cv", str(trained)])
    assert result.exit_code == 0, result.output
    assert json.loads((trained / "cv.json").read_text()) == cv


def test_exported_run_scores_with_evaluate(trained, small_cache):
    """The run exports to a contract-valid submission.zip that `kit evaluate` scores on the data set; the run's
    report.html, which kit train wrote, now shows the export's gates."""
    assert "Not exported yet" in (trained / "report.html").read_text()
    result = runner.invoke(app, ["export", str(trained), "--top", "2"])
    assert result.exit_code == 0, result.output
    assert "Not exported yet" not in (trained / "report.html").read_text()
    assert "all gates passed" in (trained / "report.html").read_text()
    result = runner.invoke(app, ["evaluate", str(trained / "export" / "submission.zip"),
                                 "--data", str(small_cache / "data"), "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "on 10 sequences" in result.output


@pytest.mark.parametrize("args,message", [
    (["--set", "train.epoch=2"], "Error: unknown key 'train.epoch'"),
    (["--model", "lama"], "Error: unknown model 'lama'; registered models:"),
    (["--folds", "9"], "Error: 9 folds need at least 9 participants, the cache has 4"),
    (["--fold", "3", "--folds", "2"], "Error: --fold 3 is out of range"),
])
def test_bad_train_options_fail_with_one_line(small_cache, tmp_path, args, message):
    """Typos in options exit 1 with a one-line error that names the problem."""
    result = runner.invoke(app, ["train", "--cache", str(small_cache / "cache"), "--out", str(tmp_path / "r"),
                                 "--epochs", "1", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_missing_cache_names_the_fix(tmp_path):
    """Training without a cache says to run kit prepare."""
    result = runner.invoke(app, ["train", "--cache", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "kit prepare" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("name", __import__("kit.models", fromlist=["list_models"]).list_models())
def test_every_registered_model_trains_and_exports(small_cache, tmp_path, name):
    """Each registered model trains a fold through `kit train` and exports to a TFLite file that passes the gates
    (the mlp with every feature option of its recipe on)."""
    recipe = ["--recipe", "mlp80"] if name == "mlp" else []
    run = tmp_path / name
    result = runner.invoke(app, ["train", "--cache", str(small_cache / "cache"), "--out", str(run), "--folds", "2",
                                 "--fold", "0", "--epochs", "1", *recipe, "--model", name,
                                 "--set", "preprocess.max_len=16", "--set", "train.batch_size=8"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run), "--top", "1", "--fp16"])
    assert result.exit_code == 0, result.output
    assert (run / "export" / "submission.zip").is_file()
