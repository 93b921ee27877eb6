"""AWP (kit.training.awp) against a hand computation of tf_utils' definition, under both backends and data
parallelism; and `kit train` with AWP, RAdam and Lookahead on 8 simulated JAX devices.

The hand computation is numpy on a one-layer softmax classifier, whose loss gradient has a closed form: g at w;
delta = lambda g / ||g|| per tensor; g' at w + delta; w - lr g' (plain SGD, so the applied gradient shows in the
weights); the loss reported is the one at w + delta. Before the start step: w - lr g and the loss at w.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDA, LR, BATCH = 0.2, 0.5, 8

# The same check in a process of its own: 8 JAX devices under Keras' DataParallel, or 2 TF replicas under
# MirroredStrategy (devices are set before the backend is imported).
REPLICAS = """
import os, sys
if sys.argv[1] == "tf":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    scope = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(2)]).scope()
else:
    import contextlib, keras
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    scope = contextlib.nullcontext()
from tests.training.test_awp import check_awp
with scope:
    check_awp(start_step=1)
print("ok")
"""


def _problem():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(BATCH, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, BATCH)]
    return x, y, rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32")


def _loss_and_grads(x, y, w, b):
    logits = x @ w + b
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    loss = -np.mean(np.sum(y * np.log(p), -1))
    d = (p - y) / len(x)
    return loss, x.T @ d, d.sum(0)


def hand_step(x, y, w, b, awp: bool):
    """One step by tf_utils' AWP definition (or the plain step): new weights and the loss the step reports."""
    loss, gw, gb = _loss_and_grads(x, y, w, b)
    if awp:
        w_moved, b_moved = w + LAMBDA * gw / np.linalg.norm(gw), b + LAMBDA * gb / np.linalg.norm(gb)
        loss, gw, gb = _loss_and_grads(x, y, w_moved, b_moved)
    return w - LR * gw, b - LR * gb, loss


def check_awp(start_step: int, precision: str = "float32", tolerance: float = 1e-5) -> None:
    """Two training steps of an AWPModel starting at `start_step`, held to `hand_step` after each."""
    import keras

    from kit.models.registry import dtype_policy
    from kit.training.awp import with_awp

    x, y, w, b = _problem()
    with dtype_policy(precision):
        inputs = keras.Input((4,))
        base = keras.Model(inputs, keras.layers.Dense(3)(inputs))
        model = with_awp(base, LAMBDA, start_step)
        model.compile(optimizer=keras.optimizers.SGD(LR), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.set_weights([w, b])
    for step in range(2):
        logs = model.train_on_batch(x, y, return_dict=True)
        w, b, loss = hand_step(x, y, w, b, awp=step >= start_step)
        got_w, got_b = (keras.ops.convert_to_numpy(v) for v in model.trainable_weights)
        np.testing.assert_allclose(got_w, w, rtol=tolerance, atol=tolerance, err_msg=f"step {step}")
        np.testing.assert_allclose(got_b, b, rtol=tolerance, atol=tolerance, err_msg=f"step {step}")
        assert logs["loss"] == pytest.approx(loss, rel=tolerance, abs=tolerance), f"step {step}"


def test_awp_step_is_the_definition_and_the_plain_step_before_its_start():
    """Rule: from the start step on, a step applies the gradient taken at w + lambda g/||g|| to w and reports
    the moved pass's loss; before it, the step is Keras' plain one."""
    check_awp(start_step=1)  # step 0 plain, step 1 AWP
    check_awp(start_step=0)  # AWP from the first step (no switch in the graph)


def test_awp_under_mixed_float16_scales_its_loss():
    """The same under mixed_float16 (a LossScaleOptimizer around SGD), to float16's precision."""
    check_awp(start_step=1, precision="mixed_float16", tolerance=5e-3)


@pytest.mark.parametrize("backend", ["jax", "tf"])
def test_awp_step_on_replicas(backend):
    """The same hand computation holds on 8 JAX devices (DataParallel, XLA) and on 2 mirrored TF replicas: the
    perturbation comes from the whole batch's gradient, however many devices share it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend == "jax":
        env.update(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run([sys.executable, "-c", REPLICAS, backend], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
