"""Augmentations change what they should and nothing else (the pipeline that runs them: test_pipeline.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kit.preprocessing import augment
from kit.data import landmarks as L


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


def test_affine_turns_frames_without_a_face_around_the_pose_s_nose():
    """Real files have frames without a face: there the pose's nose is the head (kit/preprocessing/head.py), so rotating
    keeps the hands of those frames (instead of turning them into NaN) and their distance to it."""
    x = frames()
    x[2:4, list(L.FACE)] = np.nan
    rotated = augment.random_affine(tf.constant(x), 30.0, 0.0, 0.0, tf.constant([3, 4], tf.int64)).numpy()
    assert np.isfinite(rotated[2:4, list(L.RIGHT_HAND)]).all() and np.isnan(rotated[2:4, list(L.FACE)]).all()
    dist = lambda a: np.linalg.norm(a[2:4, list(L.RIGHT_HAND), :2] - a[2:4, L.POSE_HEAD, None, :2], axis=-1)
    np.testing.assert_allclose(dist(rotated), dist(x), atol=1e-5)


def test_mixup_keeps_labels_a_distribution():
    """Mixed labels still sum to 1 per example; masks are the union of the mixed examples' masks."""
    inputs = {"features": tf.random.normal([8, 5, 3]), "mask": tf.cast(tf.random.uniform([8, 5]) > 0.5, tf.float32)}
    labels = tf.one_hot(tf.range(8) % 4, 4)
    mixed, mixed_labels = augment.mixup(inputs, labels, 0.5, tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(mixed_labels.numpy().sum(-1), 1, atol=1e-6)
    assert np.all(mixed["mask"].numpy() >= inputs["mask"].numpy())
