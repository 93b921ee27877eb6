"""A killed training run (folds or full fits) resumes from its last epoch (training on several devices:
tests/training/test_distribute.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from tests.environment import finished, wait_for

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache(tiny_cache) -> Path:
    return tiny_cache


def kit(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "kit.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def kill_after_first_epoch(proc, backup: Path) -> None:
    """SIGKILL a training process as soon as its backup records a finished epoch; fail if it ended by itself."""
    wait_for(lambda: backup.is_file() and json.loads(backup.read_text())["epoch"] >= 1,
             f"kit train to back up its first epoch in {backup}", timeout=600, proc=proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run was killed mid-training, not finished"


def test_killed_run_resumes_after_its_first_epoch(cache, tmp_path):
    """Kill `kit train` once epoch 1 is backed up; --resume finishes the fold without redoing epoch 1,
    with optimizer state restored (its step counter continues) and the same config."""
    run = tmp_path / "run"
    args = ["train", "--cache", str(cache), "--out", str(run), "--folds", "2", "--fold", "0", "--epochs", "4",
            "--model", "llama_tiny", "--set", "preprocess.max_len=16"]
    backup = run / "fold0" / "backup" / "state.json"
    kill_after_first_epoch(kit(*args), backup)
    assert not (run / "fold0" / "metrics.json").exists()
    epochs_done = json.loads(backup.read_text())["epoch"]
    config_before = (run / "config.json").read_text()

    resumed = kit("train", "--resume", str(run))
    output, _ = finished(resumed, "kit train --resume to finish", timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming after epoch {epochs_done}" in output
    assert output.count("Epoch ") == 4 - epochs_done, "finished epochs are not trained again"
    history = (run / "fold0" / "history.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2", "3"]
    metrics = json.loads((run / "fold0" / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] == epochs_done
    assert (run / "config.json").read_text() == config_before
    assert not (run / "fold0" / "backup").exists(), "the backup is removed once the fold is finished"


@pytest.mark.slow
def test_killed_full_fit_resumes_after_its_first_epoch(cache, tmp_path):
    """A full fit (no validation) killed once epoch 1 is backed up resumes like a fold: the finished epoch is not
    trained again and the kept weights are the last epoch's."""
    run = tmp_path / "full"
    full = kit("train", "--full", "--cache", str(cache), "--out", str(run), "--epochs", "3", "--model", "llama_tiny",
               "--set", "preprocess.max_len=16")
    backup = run / "full0" / "backup" / "state.json"
    kill_after_first_epoch(full, backup)
    state = json.loads(backup.read_text())
    assert state["best_val_accuracy"] is None and (run / "full0" / "model.weights.h5").is_file()

    resumed = kit("train", "--resume", str(run))
    output, _ = finished(resumed, "kit train --resume to finish", timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming after epoch {state['epoch']}" in output and output.count("Epoch ") == 3 - state["epoch"]
    history = (run / "full0" / "history.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2"]
    metrics = json.loads((run / "full0" / "metrics.json").read_text())
    assert metrics["validated"] is False and metrics["resumed_after_epoch"] == state["epoch"]
    assert not (run / "full0" / "backup").exists()


def test_without_validation_the_backup_keeps_the_last_epoch(tmp_path):
    """A full fit has no val_accuracy: every epoch replaces the kept weights (its EMA ones), crash-safely."""
    import keras

    from kit.training.train import EpochBackup

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.AdamW(use_ema=True), loss="mse")
    backup, best = tmp_path / "backup", tmp_path / "model.weights.h5"
    callback = EpochBackup(backup, best, ema=True, validated=False)
    callback.set_model(model)
    for epoch in range(2):
        model.fit(np.ones((4, 3)), np.full((4, 2), epoch), epochs=1, verbose=0)
        callback.on_epoch_end(epoch, {"loss": 1.0})
    state = json.loads((backup / "state.json").read_text())
    assert state["epoch"] == 2 and state["best_weights"] == "best-epoch2.weights.h5"
    assert state["best_val_accuracy"] is None
    kept = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    kept.load_weights(best)
    ema = keras.ops.convert_to_numpy(model.optimizer._model_variables_moving_average[0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kept.layers[0].kernel), ema)


def test_resume_of_a_finished_run_trains_nothing(cache, tmp_path):
    """Resuming a run whose folds are all finished only re-merges cv.json; new settings beside --resume are refused
    in one line naming the command that trains with them."""
    run = tmp_path / "done"
    base = ["train", "--cache", str(cache), "--out", str(run), "--folds", "2", "--epochs", "1",
            "--model", "llama_tiny", "--set", "preprocess.max_len=16"]
    assert runner.invoke(app, base).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert "already finished" in result.output and "Epoch" not in result.output
    changed = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "3", "--set", "train.learning_rate=0.1",
                                  "--model", "mlp"])
    assert changed.exit_code == 1, "new settings beside --resume are refused, never silently ignored"
    assert changed.output.splitlines()[-1] == (
        f"Error: --resume continues {run} with the settings it started with, so --epochs, --model, --set would be "
        f"ignored: drop them, or train a new run from its config with them: kit train --cache {cache} --config "
        f"{run / 'config.json'} --out NEW_RUN and those options")


def test_same_out_with_another_config_is_refused(cache, tmp_path):
    """Re-using a run folder with a different config would mix folds of two recipes: refused with the fix."""
    run = tmp_path / "mixed"
    base = ["train", "--cache", str(cache), "--out", str(run), "--folds", "2", "--fold", "0", "--epochs", "1",
            "--model", "llama_tiny", "--set", "preprocess.max_len=16"]
    assert runner.invoke(app, base).exit_code == 0
    result = runner.invoke(app, [*base[:-1], "preprocess.max_len=24"])
    assert result.exit_code == 1 and "another config" in result.output and "--resume" in result.output


def test_report_md_lists_folds_participants_and_confusions(cache, tmp_path):
    """report.md and cv.json give per-fold and per-participant accuracy and the confused sign pairs."""
    run = tmp_path / "rep"
    result = runner.invoke(app, ["train", "--cache", str(cache), "--out", str(run), "--folds", "2", "--epochs", "1",
                                 "--model", "llama_tiny", "--set", "preprocess.max_len=16"])
    assert result.exit_code == 0, result.output
    report = (run / "report.md").read_text()
    cv = json.loads((run / "cv.json").read_text())
    assert "| fold | accuracy |" in report and "| participant | sequences | accuracy |" in report
    assert len(cv["participant_accuracy"]) == 4
    for pair in cv["confused_pairs"]:
        assert f"| {pair['true']} | {pair['predicted']} | {pair['count']} |" in report
    assert (run / "fold0" / "tensorboard").is_dir()


def test_a_kill_between_backup_and_best_weights_loses_nothing(tmp_path):
    """The best weights are written under a new name, recorded in state.json, then renamed into place:
    a kill between the last two steps is finished by resume, so the best epoch's weights are never lost."""
    import keras

    from kit.training.train import EpochBackup

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.AdamW(use_ema=True), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    backup, best = tmp_path / "backup", tmp_path / "model.weights.h5"
    callback = EpochBackup(backup, best, ema=True)
    callback.set_model(model)
    real_replace = os.replace

    def killed_at_rename(src, dst):
        if Path(dst) == best:
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    os.replace = killed_at_rename
    try:
        with pytest.raises(KeyboardInterrupt):
            callback.on_epoch_end(0, {"val_accuracy": 0.5})
    finally:
        os.replace = real_replace
    assert not best.exists() and json.loads((backup / "state.json").read_text())["best_val_accuracy"] == 0.5

    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    fresh.compile(optimizer=keras.optimizers.AdamW(use_ema=True), loss="mse")
    assert EpochBackup.restore(fresh, backup, best) == 1
    assert best.is_file(), "resume put the best weights in place"
    ema = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    fresh.load_weights(best)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh.layers[0].kernel), ema[0])
    assert EpochBackup(backup, best).best_accuracy == 0.5, "a resumed run keeps beating the recorded best"
