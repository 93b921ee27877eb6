"""Augmentations change what they should and nothing else; the pipeline's order is a function of the seed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from kit import augment
from kit import landmarks as L
from kit.cli import app
from kit.config import Config, PreprocessConfig, TrainConfig


def frames(n: int = 6, seed: int = 0) -> np.ndarray:
    out = np.random.default_rng(seed).uniform(0.2, 0.8, (n, L.N_LANDMARKS, 3)).astype(np.float32)
    out[:, list(L.LEFT_HAND)] = np.nan
    return out


def test_mirror_twice_is_identity_and_swaps_hands():
    """A mirror moves the right hand's points to the left hand's slots with x -> 1 - x; twice gives the input."""
    x = frames()
    once = augment.mirror(tf.constant(x)).numpy()
    np.testing.assert_allclose(once[:, list(L.LEFT_HAND), 0], 1 - x[:, list(L.RIGHT_HAND), 0], atol=1e-6)
    assert np.isnan(once[:, list(L.RIGHT_HAND)]).all()
    np.testing.assert_allclose(augment.mirror(tf.constant(once)).numpy(), x, atol=1e-6)


def test_mirror_permutation_is_a_permutation():
    """Every landmark goes somewhere and nothing is duplicated."""
    assert sorted(augment.mirror_permutation()) == list(range(L.N_LANDMARKS))


def test_affine_keeps_distances_to_head_and_missing_points():
    """Rotation alone keeps every point's distance to the head; NaN hands stay NaN; zero settings change nothing."""
    x = frames()
    seed = tf.constant([3, 4], tf.int64)
    same = augment.random_affine(tf.constant(x), 0.0, 0.0, 0.0, seed).numpy()
    np.testing.assert_allclose(same, x, atol=1e-6, equal_nan=True)
    rotated = augment.random_affine(tf.constant(x), 30.0, 0.0, 0.0, seed).numpy()
    dist = lambda a: np.linalg.norm(a[..., :2] - a[:, L.HEAD : L.HEAD + 1, :2], axis=-1)
    np.testing.assert_allclose(dist(rotated), dist(x), atol=1e-5)
    assert np.isnan(rotated[:, list(L.LEFT_HAND)]).all()
    assert not np.allclose(rotated[:, list(L.RIGHT_HAND)], x[:, list(L.RIGHT_HAND)])


def test_mixup_keeps_labels_a_distribution():
    """Mixed labels still sum to 1 per example; masks are the union of the mixed examples' masks."""
    inputs = {"features": tf.random.normal([8, 5, 3]), "mask": tf.cast(tf.random.uniform([8, 5]) > 0.5, tf.float32)}
    labels = tf.one_hot(tf.range(8) % 4, 4)
    mixed, mixed_labels = augment.mixup(inputs, labels, 0.5, tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(mixed_labels.numpy().sum(-1), 1, atol=1e-6)
    assert np.all(mixed["mask"].numpy() >= inputs["mask"].numpy())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from kit.cache import open_cache

    root = tmp_path_factory.mktemp("pipe")
    runner = CliRunner()
    assert runner.invoke(app, ["synth", "--out", str(root / "d"), "--signs", "3", "--participants", "2",
                               "--per-sign", "3"]).exit_code == 0
    assert runner.invoke(app, ["prepare", "--data", str(root / "d"), "--cache", str(root / "c")]).exit_code == 0
    return open_cache(root / "c")


def batches(cache, cfg, passes: int = 2):
    from kit.pipeline import make_dataset

    ds = make_dataset(cache, np.arange(len(cache)), cfg, training=True)
    return [[(x["features"].numpy(), y.numpy()) for x, y in ds] for _ in range(passes)]


def test_pipeline_order_is_a_function_of_the_seed(cache):
    """Same seed: the same batches, pass after pass; another seed: other batches; passes differ from each other."""
    cfg = Config(preprocess=PreprocessConfig(max_len=16),
                 train=TrainConfig(batch_size=4, mixup_alpha=0.4, rotate_deg=5, noise_std=0.001))
    a, b = batches(cache, cfg), batches(cache, cfg)
    for pass_a, pass_b in zip(a, b):
        for (xa, ya), (xb, yb) in zip(pass_a, pass_b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0][0], a[1][0][0]), "each pass reshuffles"
    other = batches(cache, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=1)), passes=1)
    assert not np.array_equal(a[0][0][0], other[0][0][0])


def test_pipeline_resumes_the_order_it_would_have_had(cache):
    """start_pass=1 gives exactly the second pass of a run that started at 0 (what --resume relies on)."""
    from kit.pipeline import make_dataset

    cfg = Config(preprocess=PreprocessConfig(max_len=16), train=TrainConfig(batch_size=4))
    two = batches(cache, cfg)
    resumed = make_dataset(cache, np.arange(len(cache)), cfg, training=True, start_pass=1)
    for (x, y), (x2, _) in zip(resumed, two[1]):
        np.testing.assert_array_equal(x["features"].numpy(), x2)
