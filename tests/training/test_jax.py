"""Models train under KERAS_BACKEND=jax (as on a GPU machine) and export under TensorFlow from config + weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app

pytest.importorskip("jax", reason="jax is part of the test extra: pip install -e '.[test]'")
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_jax_trained_run_exports_and_matches_its_own_predictions(tmp_path):
    """A fold trained under JAX, rebuilt under TF from its config.json and weights, predicts the same
    out-of-fold probabilities (1e-4), and its export passes every gate."""
    for args in (["synth", "--data", str(tmp_path / "data"), "--signs", "4", "--signers", "4", "--per-sign", "2"],
                 ["prepare", "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--workers", "1"]):
        assert runner.invoke(app, args).exit_code == 0
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "kit.cli", "train", "--cache", str(tmp_path / "cache"), "--out", str(run),
         "--folds", "2", "--fold", "0", "--epochs", "2", "--model", "llama_tiny", "--set", "preprocess.max_len=16",
         "--set", "train.mixup_alpha=0.5"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    from kit.data.cache import open_cache
    from kit.data.folds import assign_folds
    from kit.training.pipeline import make_dataset
    from kit.training.train import load_fold_model

    model, cfg = load_fold_model(run / "fold0")
    cache = open_cache(tmp_path / "cache")
    val = np.flatnonzero(assign_folds(cache.participant_ids, 2) == 0)
    logits = model.predict(make_dataset(cache, val, cfg, training=False), verbose=0)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, np.load(run / "fold0" / "oof.npz")["probs"], atol=1e-4)

    result = runner.invoke(app, ["export", str(run), "--top", "1"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and (run / "export" / "submission.zip").is_file()
