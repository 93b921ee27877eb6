"""RAdam and Lookahead (kit.training.optimizers) step for step against optax, an independent implementation.

TF Addons' rules (the 1st place's optimizer) are all expressible in optax: RAdam is optax's `scale_by_radam` with
eps 1e-7 outside the root, eps_root 0 and the threshold TFA's `sma_threshold` (both compare sma_t >= threshold and
fall back to the bias-corrected momentum below it); TFA's decay (u + wd_t w, before lr_t multiplies u) is optax's
`add_decayed_weights` placed after the RAdam direction and before `scale_by_learning_rate`; Lookahead is
`optax.lookahead` (sync after every sync_period-th step, slow weights from the start ones). So every case here holds
the kit's weights to optax's, after each of 30 steps fed the same gradients and the same schedules; the first four
steps fall below a threshold of 4 (sma_t ~ t), the rest above it. Both run in float64: in float32, sma_t - 4 loses
three digits to cancellation just past the threshold, so two faithful implementations differ there by 1e-4 of a
step, more than the eps placement they should be held to. Each case runs under TensorFlow here and under JAX in a
subprocess (KERAS_BACKEND must be set before Keras is imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

optax = pytest.importorskip("optax", reason="optax is part of the test extra: pip install -e '.[test]'")
ROOT = Path(__file__).resolve().parents[2]
STEPS = 30
CASES = {  # name: (sma_threshold, train.weight_decay or 0 for none, lookahead sync period or 0 for none)
    "radam": (4.0, 0.0, 0),
    "radam_threshold_5": (5.0, 0.0, 0),
    "radam_decay": (4.0, 0.1, 0),
    "radam_decay_lookahead": (4.0, 0.1, 5),
}


def _schedules():
    """The kit's kind of schedule (warm-up, cosine, floor) and the 1st place's decay schedule: it times 0.1...
    here times the case's weight_decay, built as kit.training.train builds it."""
    import keras

    lr = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=STEPS - 5, alpha=0.1, warmup_target=2e-2,
                                               warmup_steps=5)
    return lr, (lambda wd: keras.optimizers.schedules.CosineDecay(1e-3 * wd, decay_steps=STEPS - 5, alpha=0.1,
                                                                  warmup_target=2e-2 * wd, warmup_steps=5))


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=(5, 3)), rng.normal(size=(3,))]
    # Gradients of very different sizes per step and per tensor, so m / sqrt(v) is not trivially +-1.
    grads = [[rng.normal(size=w.shape) * rng.uniform(0.01, 3.0) for w in start]
             for _ in range(STEPS)]
    return start, grads


def kit_trajectory(case: str) -> list[list[np.ndarray]]:
    """The kit optimizer's weights after each step, under the running Keras backend: under TF, `apply` step by
    step; under JAX, `stateless_apply` compiled once, as the trainer runs it."""
    import keras

    from kit.training.optimizers import RAdam, lookahead

    threshold, wd, sync = CASES[case]
    lr, decay = _schedules()
    kwargs = dict(learning_rate=lr, weight_decay=decay(wd) if wd else 0.0, sma_threshold=threshold)
    opt = lookahead(RAdam)(sync_period=sync, slow_step_size=0.5, **kwargs) if sync else RAdam(**kwargs)
    start, grads = _problem()
    variables = [keras.Variable(w, dtype="float64") for w in start]
    if keras.backend.backend() == "jax":  # as Keras' JAX trainer runs it: stateless, one compiled step
        import jax

        opt.build(variables)
        step = jax.jit(opt.stateless_apply)
        state, weights, out = [v.value for v in opt.variables], [v.value for v in variables], []
        for g in grads:
            weights, state = step(state, [jax.numpy.asarray(x) for x in g], weights)
            out.append([np.asarray(w) for w in weights])
        return out
    out = []
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(x, "float64") for x in g], variables)
        out.append([keras.ops.convert_to_numpy(v) for v in variables])
    return out


def optax_trajectory(case: str) -> list[list[np.ndarray]]:
    import jax

    with jax.enable_x64(True):
        return _optax_trajectory(case)


def _apply(tx, grads, state, params):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def _optax_trajectory(case: str) -> list[list[np.ndarray]]:
    import jax
    import jax.numpy as jnp

    threshold, wd, sync = CASES[case]
    lr, decay = _schedules()
    lrs = jnp.asarray([float(lr(t)) for t in range(STEPS)])  # the same rates fed to both
    parts = [optax.scale_by_radam(b1=0.9, b2=0.999, eps=1e-7, eps_root=0.0, threshold=threshold)]
    if wd:
        wds = jnp.asarray([float(decay(wd)(t)) for t in range(STEPS)])
        parts.append(optax.add_decayed_weights(lambda count: wds[count]))
    parts.append(optax.scale_by_learning_rate(lambda count: lrs[count]))
    tx = optax.chain(*parts)
    start, grads = _problem()
    params = [jnp.asarray(w) for w in start]
    if sync:
        tx = optax.lookahead(tx, sync_period=sync, slow_step_size=0.5)
        params = optax.LookaheadParams.init_synced(params)
    state = tx.init(params)
    out = []
    step = jax.jit(lambda g, state, params: _apply(tx, g, state, params))
    for g in grads:
        params, state = step([jnp.asarray(x) for x in g], state, params)
        out.append([np.asarray(w) for w in (params.fast if sync else params)])
    return out


def check_case(case: str) -> None:
    ours, theirs = kit_trajectory(case), optax_trajectory(case)
    start, _ = _problem()
    for step, (a, b) in enumerate(zip(ours, theirs), 1):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype == np.float64
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=f"{case}: step {step}")
    moved = np.abs(ours[-1][0] - start[0]).max()
    assert moved > 1e-2, f"{case}: the weights hardly moved ({moved}); the test would prove nothing"


def test_rectification_threshold_is_crossed_within_the_steps():
    """sma_t is below 4 for steps 1-4 and above it from step 5 (below 5 to step 5 for the threshold-5 case): both
    branches run in every case."""
    sma = [1999 - 2 * t * 0.999 ** t / (1 - 0.999 ** t) for t in range(1, STEPS + 1)]
    assert [s >= 4 for s in sma[:6]] == [False] * 4 + [True] * 2 and min(sma[4:]) > 4.9
    assert [s >= 5 for s in sma[:6]] == [False] * 5 + [True] and min(sma[5:]) > 5.9


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_optax_under_tensorflow(case):
    check_case(case)


def test_matches_optax_under_jax():
    """The cases with and without decay and Lookahead, under Keras' JAX backend, in a process of its own (the
    threshold-5 case differs from the first only in a constant)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = ("import keras; assert keras.backend.backend() == 'jax'\n"
              "from tests.training.test_optimizers import CASES, check_case\n"
              "for case in ('radam', 'radam_decay_lookahead'): check_case(case)\nprint('ok', 2)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "ok 2" in proc.stdout, proc.stdout + proc.stderr
