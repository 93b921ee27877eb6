"""Mixed precision and XLA (train.precision, train.jit_compile): every model trains under every policy with float32
logits, the policy never leaks, loss scaling and EMA backups work together, and export is always float32."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.config import PRECISIONS, Config, apply_overrides
from kit.models import list_models
from kit.training.train import EpochBackup, build_model, compile_model, load_fold_model, resolve_jit_compile

runner = CliRunner()
MAX_LEN = 16


def tiny_cfg(*overrides: str, model: str = "llama_tiny") -> Config:
    return apply_overrides(Config(), [f'model.name="{model}"', f"preprocess.max_len={MAX_LEN}", *overrides])


def batch(model: keras.Model):
    """Three sequences: full, 3 real frames, none real (padding only), with one-hot labels."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, MAX_LEN, model.input["features"].shape[-1])).astype(np.float32)
    mask = np.zeros((3, MAX_LEN), np.float32)
    mask[0], mask[1, :3] = 1, 1
    return {"features": features, "mask": mask}, np.eye(250, dtype=np.float32)[[1, 2, 3]]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_tiny_model_trains_a_compiled_step_with_float32_logits(precision):
    """Under each policy the kit's compile path trains a finite step; logits and weights stay float32, only
    mixed_float16 gets a LossScaleOptimizer, and the global policy is float32 again after the build."""
    model = compile_model(tiny_cfg(f"train.precision={precision}"), steps_per_epoch=1)
    assert keras.config.dtype_policy().name == "float32", "the policy leaked out of the model build"
    assert model.dtype_policy.name == precision
    assert type(model.optimizer).__name__ == ("LossScaleOptimizer" if precision == "mixed_float16" else "Lion")
    x, y = batch(model)
    loss, _ = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    logits = model(x, training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32" and np.all(np.isfinite(logits))
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.trainable_weights} == {"float32"}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_trains_a_step_under_every_policy(name, precision):
    """Every registered model at its preset size: one eager training step is finite, with float32 logits, even
    with a padding-only sequence in the batch (16-bit overflow in a mask or pool shows up as NaN here)."""
    model = build_model(tiny_cfg(f"train.precision={precision}", model=name))
    model.compile(optimizer=keras.optimizers.AdamW(use_ema=True),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), run_eagerly=True)
    x, y = batch(model)
    assert np.isfinite(model.train_on_batch(x, y))
    logits = model(x, training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32" and np.all(np.isfinite(logits))


def test_export_rebuilds_a_mixed_precision_model_in_float32(tmp_path):
    """load_fold_model ignores train.precision: the weights are float32 and export checks parity in float32."""
    cfg = tiny_cfg("train.precision=mixed_float16")
    build_model(cfg).save_weights(tmp_path / "model.weights.h5")
    cfg.save(tmp_path / "config.json")
    model, loaded = load_fold_model(tmp_path)
    assert loaded.train.precision == "mixed_float16" and model.dtype_policy.name == "float32"
    assert {keras.backend.standardize_dtype(layer.compute_dtype) for layer in model.layers} == {"float32"}


def test_mixed_float16_backup_keeps_ema_weights_and_restores_the_loss_scale(tmp_path):
    """With the optimizer inside a LossScaleOptimizer, EpochBackup still saves the EMA weights as the best, and
    restore brings back the step count, the loss scale and the raw weights."""
    cfg = tiny_cfg("train.precision=mixed_float16", "train.ema=true")
    model = compile_model(cfg, steps_per_epoch=1)
    x, y = batch(model)
    for _ in range(3):
        model.train_on_batch(x, y)
    backup, best = tmp_path / "backup", tmp_path / "model.weights.h5"
    callback = EpochBackup(backup, best, ema=True)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_accuracy": 0.5})

    inner = model.optimizer.inner_optimizer
    ema = {v.path: keras.ops.convert_to_numpy(a)
           for v, a in zip(inner._trainable_variables, inner._model_variables_moving_average)}
    kept = build_model(cfg, precision="float32")  # as export rebuilds it
    kept.load_weights(best)
    for var in kept.trainable_variables:
        np.testing.assert_allclose(keras.ops.convert_to_numpy(var), ema[var.path], atol=1e-6)

    resumed = compile_model(cfg, steps_per_epoch=1)
    assert EpochBackup.restore(resumed, backup, best) == 1
    assert int(resumed.optimizer.iterations) == int(model.optimizer.iterations) == 3
    assert float(resumed.optimizer.dynamic_scale) == float(model.optimizer.dynamic_scale)
    for a, b in zip(resumed.trainable_variables, model.trainable_variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_jit_compile_auto_is_off_on_this_cpu_and_on_trains_a_step():
    """auto: off under TF without a GPU or TPU (this machine); "on" compiles the train step with XLA on the CPU."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"):
        pytest.skip("this machine has an accelerator: auto is on here")
    assert resolve_jit_compile("auto") is False and resolve_jit_compile("off") is False
    model = compile_model(tiny_cfg("train.jit_compile=on"), steps_per_epoch=1)
    assert model.jit_compile is True
    x, y = batch(model)
    assert np.isfinite(model.train_on_batch(x, y)[0])


@pytest.mark.parametrize("override,message", [
    ("train.precision=fp16", "Error: train.precision='fp16' is not known; use one of float32, mixed_bfloat16, "
                             "mixed_float16"),
    ("train.jit_compile=true", "Error: train.jit_compile=True is not known; use one of auto, on, off"),
])
def test_unknown_precision_or_jit_setting_is_one_line_listing_the_valid_ones(override, message):
    """A value outside the choices is refused when the config is built, naming the valid ones."""
    result = runner.invoke(app, ["config", "--json", "--set", override])
    assert result.exit_code == 1 and result.output.strip() == message


def test_kit_config_shows_the_precision_and_xla_keys():
    """`kit config --recipe NAME` lists train.precision (float32) and train.jit_compile (auto) with the rest."""
    shown = json.loads(runner.invoke(app, ["config", "--json", "--recipe", "llama26"]).output)
    assert shown["train"]["precision"] == "float32" and shown["train"]["jit_compile"] == "auto"


def test_mixed_bfloat16_run_exports_with_every_gate_passing(tmp_path):
    """A fold trained in mixed_bfloat16 through kit train exports (rebuilt in float32) with every gate ok."""
    for args in (["synth", "--data", str(tmp_path / "data"), "--signs", "4", "--signers", "4", "--per-sign", "2"],
                 ["prepare", "--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--workers", "1"]):
        assert runner.invoke(app, args).exit_code == 0
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--cache", str(tmp_path / "cache"), "--out", str(run), "--folds", "2",
                                 "--fold", "0", "--epochs", "1", "--model", "llama_tiny",
                                 "--set", f"preprocess.max_len={MAX_LEN}", "--set", "train.precision=mixed_bfloat16"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run), "--top", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "export" / "export.json").read_text())
    assert report["passed"] and all(g["ok"] for g in report["gates"]), report["gates"]
