"""The 1st place's training settings as `kit train` wires them (train.optimizer=radam, lookahead_sync, awp_lambda,
awp_start_epoch, late_dropout_epoch): the optimizer and schedules compile_model builds, a resume that restores
every optimizer slot exactly, the refusal of late dropout for a model without it, and a short `kit train` with
all of them on 8 simulated JAX devices (tests/training/test_distribute.py's setting)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kit.config import Config, ModelConfig, PreprocessConfig, TrainConfig
from kit.errors import KitError

ROOT = Path(__file__).resolve().parents[2]
STEPS = 5  # steps per epoch in the unit tests


def first_place(**train) -> Config:
    """A tiny conv_transformer with the 1st place's optimizer, Lookahead, AWP and late dropout (cell 19), its epoch
    counts scaled down."""
    settings = dict(optimizer="radam", learning_rate=1e-3, weight_decay=0.1, lookahead_sync=2, awp_lambda=0.2,
                    awp_start_epoch=1, late_dropout_epoch=1, epochs=4, batch_size=4, ema=True, warmup_epochs=1)
    return Config(preprocess=PreprocessConfig(max_len=8), model=ModelConfig(name="conv_transformer_tiny", n_classes=3),
                  train=TrainConfig(**{**settings, **train}))


def test_radam_decay_follows_the_learning_rate_as_the_1st_place_set_it():
    """Rule: radam's decay schedule is the learning-rate schedule times train.weight_decay at every step (the
    notebook's decay_schedule, cell 18); lookahead_sync > 0 puts Lookahead around any of the three optimizers."""
    from kit.training import optimizers
    from kit.training.train import _optimizer

    cfg = first_place()
    opt = _optimizer(cfg, STEPS)
    assert isinstance(opt, optimizers.LookaheadRAdam) and (opt.sync_period, opt.slow_step_size) == (2, 0.5)
    assert opt.sma_threshold == 4.0 and opt.use_ema
    for step in (0, 3, STEPS, 11, cfg.train.epochs * STEPS - 1):
        lr, wd = float(opt._learning_rate(step)), float(opt.radam_weight_decay(step))
        assert wd == pytest.approx(0.1 * lr, rel=1e-6), step
    assert type(_optimizer(first_place(lookahead_sync=0), STEPS)) is optimizers.RAdam
    for name, cls in (("adamw", optimizers.LookaheadAdamW), ("lion", optimizers.LookaheadLion)):
        assert type(_optimizer(first_place(optimizer=name), STEPS)) is cls
    revived = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(revived) is optimizers.LookaheadRAdam and revived.get_config() == opt.get_config()


def test_late_dropout_epoch_needs_a_model_with_late_dropout():
    """Rule: late_dropout_epoch >= 0 sets the model's late dropout step to that many epochs of steps; a model
    without late dropout is refused in one line that names the ones with it."""
    from kit.training.train import build_model

    model = build_model(first_place(late_dropout_epoch=3), steps_per_epoch=7)
    assert model.get_layer("late_dropout").start_step == 21
    with pytest.raises(KitError) as err:
        build_model(dataclasses.replace(first_place(), model=ModelConfig(name="llama_tiny", n_classes=3)))
    assert str(err.value) == ("train.late_dropout_epoch=1: model 'llama_tiny' has no late dropout; the models with "
                              "one: conv_transformer, conv_transformer_tiny")


def check_resume_is_exact(tmp: Path) -> None:
    """Train 3 steps (AWP from the third: one epoch a step here), back up as kit train does after an epoch and
    restore into a fresh model: weights, optimizer slots (m, v, slow copies, EMA, step) and the late-dropout counter
    come back bit for bit. Then both take 2 more steps (the second a Lookahead sync): they stay together, to float
    rounding (two compiled copies of a graph need not add in the same order, and RAdam's m / sqrt(v) magnifies that
    where gradients are tiny; a lost slot would move a weight by a whole step, ~lr)."""
    from kit.preprocessing.preprocess import n_features
    from kit.training.train import EpochBackup, compile_model

    # Large steps from the start (no warm-up), so a lost slot would show; no dropout: Keras saves no seed state.
    cfg = first_place(awp_start_epoch=2, late_dropout_epoch=0, warmup_epochs=0, learning_rate=1e-2, epochs=6)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, overrides={"dropout": 0.0,
                                                                                   "head_dropout": 0.0}))
    rng = np.random.default_rng(0)
    x = {"features": rng.normal(size=(4, 8, n_features(cfg.preprocess))).astype("float32"),
         "mask": np.ones((4, 8), "float32")}
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    keras.utils.set_random_seed(0)
    first = compile_model(cfg, steps_per_epoch=1)
    for _ in range(3):
        first.train_on_batch(x, y)
    backup = EpochBackup(tmp / "backup", tmp / "best.weights.h5", ema=True)
    backup.set_model(first)
    backup.on_epoch_end(0, {"val_accuracy": 0.5})
    second = compile_model(cfg, steps_per_epoch=1)
    assert EpochBackup.restore(second, tmp / "backup", tmp / "best.weights.h5") == 1
    names = [v.path for v in first.optimizer.variables]
    assert names == [v.path for v in second.optimizer.variables]
    assert any("slow" in n for n in names) and any("_m" in n for n in names) and any("average" in n for n in names)

    def state(model):
        return {v.path: keras.ops.convert_to_numpy(v) for v in model.optimizer.variables + model.weights}

    saved, restored = state(first), state(second)
    assert saved.keys() == restored.keys()
    for path in saved:
        np.testing.assert_array_equal(restored[path], saved[path], err_msg=path)
    for model in (first, second):
        for _ in range(2):
            model.train_on_batch(x, y)
    after, resumed = state(first), state(second)
    for path in after:
        np.testing.assert_allclose(resumed[path], after[path], rtol=1e-3, atol=1e-5, err_msg=path)
    assert int(resumed["radam/iteration"]) == 5 and abs(after["stem/kernel"] - saved["stem/kernel"]).max() > 1e-4


def test_resume_restores_radam_lookahead_and_ema_state_exactly(tmp_path):
    check_resume_is_exact(tmp_path)


# kit train with the 1st place's settings on 8 JAX devices (XLA).
JAX8 = """
import sys
from kit.cli import app
sys.exit(app(sys.argv[1:], standalone_mode=False) or 0)
"""


def test_kit_train_with_awp_radam_lookahead_on_8_jax_devices(tiny_cache, tmp_path):
    """A fold trains with AWP (from epoch 1), RAdam in Lookahead, late dropout and EMA on 8 simulated JAX
    devices; the plain model rebuilt from config.json loads its weights (AWP adds none) and predicts its OOF."""
    run = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    sets = ["model.name=conv_transformer_tiny", "preprocess.max_len=16", "train.batch_size=8", "train.optimizer=radam",
            "train.lookahead_sync=5", "train.awp_lambda=0.2", "train.awp_start_epoch=1", "train.late_dropout_epoch=1"]
    args = ["train", "--cache", str(tiny_cache), "--out", str(run), "--folds", "2", "--fold", "0", "--epochs", "2"]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run([sys.executable, "-c", JAX8, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((run / "fold0" / "metrics.json").read_text())
    assert metrics["devices"].startswith("8 x") and metrics["epochs"] == 2
    history = (run / "fold0" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "nan" not in "".join(history[1:]).lower()

    from kit.data.cache import open_cache
    from kit.data.folds import assign_folds
    from kit.training.pipeline import make_dataset
    from kit.training.train import load_fold_model

    model, cfg = load_fold_model(run / "fold0")
    assert type(model) is not __import__("kit.training.awp", fromlist=["AWPModel"]).AWPModel
    cache = open_cache(tiny_cache)
    val = np.flatnonzero(assign_folds(cache.participant_ids, 2) == 0)
    logits = model.predict(make_dataset(cache, val, cfg, training=False), verbose=0)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(-1, keepdims=True), np.load(run / "fold0" / "oof.npz")["probs"],
                               atol=1e-4)
