"""The training pipeline runs the augmentations its config sets, in the 1st place's order: with the 1st place's
off it computes what it computed before they joined, op for op; with them on, batches stay reproducible and
finite."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from kit.config import Config, PreprocessConfig, TrainConfig
from kit.preprocessing import augment
from kit.preprocessing.preprocess import keep_frames, preprocess

FIRST = dict(resample_prob=0.8, random_crop=True, affine_prob=0.75, temporal_mask_prob=0.5, spatial_mask_prob=0.5)


@pytest.fixture(scope="module")
def cache(synthetic):
    from kit.data.cache import open_cache

    return open_cache(synthetic(3, 2, 3, cache=True) / "cache")


def batches(cache, cfg, n):
    from kit.training.pipeline import make_dataset

    ds = make_dataset(cache, np.arange(len(cache)), cfg, training=True)
    return [x["features"].numpy() for x, _ in ds.take(n)]


def test_with_the_1st_place_s_augmentations_off_the_batches_are_today_s(cache):
    """The example as the pipeline built it before the 1st place's augmentations: frames kept, mirror seeded
    (draw, seed), the 80th place's affine (draw, seed + 7), preprocessing; the pipeline gives exactly that."""
    from kit.training.pipeline import RESIDENT, resident, training_order

    cfg = Config(preprocess=PreprocessConfig(max_len=12),
                 train=TrainConfig(batch_size=4, rotate_deg=10, scale_range=0.1, noise_std=0.01, seed=5))
    t, data = cfg.train, resident(cache)
    seed = tf.constant(t.seed, tf.int64)

    def today(i, epoch):
        frames = keep_frames(data.sequence(i), cfg.preprocess, RESIDENT)
        draw = i * 1000 + epoch
        frames, _ = augment.random_mirror(frames, t.mirror_prob, tf.stack([draw, seed]), RESIDENT)
        frames = augment.random_affine(frames, t.rotate_deg, t.scale_range, t.noise_std, tf.stack([draw, seed + 7]),
                                       RESIDENT)
        return preprocess(frames, cfg.preprocess, RESIDENT, frames_dropped=True)[0].numpy()

    got = np.concatenate(batches(cache, cfg, 2))
    order = list(training_order(np.arange(len(cache)), t.seed).take(len(got)))
    expected = np.stack([today(i, epoch) for i, epoch in order])
    np.testing.assert_array_equal(got, expected)


def test_with_them_on_batches_are_reproducible_finite_and_augmented(cache):
    base = Config(preprocess=PreprocessConfig(max_len=12), train=TrainConfig(batch_size=4))
    cfg = dataclasses.replace(base, train=dataclasses.replace(base.train, **FIRST))
    a, b, off = batches(cache, cfg, 2), batches(cache, cfg, 2), batches(cache, base, 2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert all(np.isfinite(x).all() for x in a)
    assert sum(not np.array_equal(x, y) for x, y in zip(a, off)) == len(a)
