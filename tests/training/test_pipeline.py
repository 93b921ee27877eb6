"""The input pipeline feeds the model exactly what the exported graph computes, in an order that is a pure
function of the seed, from landmarks held in RAM."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from kit.preprocessing import augment
from kit.data import landmarks as L
from kit.config import RECIPES, Config, PreprocessConfig, TrainConfig, recipe
from kit.preprocessing.preprocess import preprocess

OPTIONS = ("dominant_hand", "shoulder_unit", "distances", "angles", "motion", "trim_idle")


@pytest.fixture(scope="module")
def cache(synthetic):
    from kit.data.cache import open_cache

    return open_cache(synthetic(3, 2, 3, cache=True) / "cache")


def real_sequences(samples) -> list[np.ndarray]:
    from kit.data.parquet import read_landmarks

    return [read_landmarks(path) for path in sorted(samples.glob("**/*.parquet"))]


def preprocess_configs() -> list[PreprocessConfig]:
    """Every recipe's preprocessing, every option alone, and z on."""
    configs = [recipe(name).preprocess for name in RECIPES] + [PreprocessConfig(use_z=True)]
    configs += [PreprocessConfig(max_len=32, points="1st", center="face17", scale="axis_std", drop_frames="empty",
                                 long="first", diffs=2), PreprocessConfig(max_len=8, scale="none", long="first")]
    return configs + [PreprocessConfig(max_len=32, **{option: True}) for option in OPTIONS]


def test_resident_landmarks_hold_everything_preprocessing_reads(real_samples):
    """Rule: the pipeline keeps only RESIDENT landmarks in RAM, so preprocessing those columns must give
    exactly what it gives on the full 543-point frame, for every recipe and option, on the real samples;
    and the mirror, the affine augmentation and the dominant-hand flip must map them onto themselves."""
    from kit.training.pipeline import RESIDENT

    assert len(RESIDENT) < L.N_LANDMARKS / 4  # the memory plan: 135 of 543 points
    perm = augment.mirror_permutation()
    assert set(perm[RESIDENT].tolist()) == set(RESIDENT.tolist())
    for frames in real_sequences(real_samples):
        full = tf.constant(frames)
        kept = tf.constant(frames[:, RESIDENT])
        for cfg in preprocess_configs():
            want = preprocess(full, cfg)
            got = preprocess(kept, cfg, RESIDENT)
            for a, b in zip(want, got):
                np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=str(cfg))
        np.testing.assert_array_equal(augment.mirror(full).numpy()[:, RESIDENT],
                                      augment.mirror(kept, RESIDENT).numpy())
        seed = tf.constant([5, 6], tf.int64)
        np.testing.assert_array_equal(augment.random_affine(full, 10.0, 0.1, 0.0, seed).numpy()[:, RESIDENT],
                                      augment.random_affine(kept, 10.0, 0.1, 0.0, seed, RESIDENT).numpy())


def test_a_landmark_outside_the_layout_is_an_error():
    """Rule: indexing a point the layout does not hold fails loudly instead of reading a wrong column."""
    with pytest.raises(ValueError, match="not in the layout"):
        L.columns([5], np.asarray([1, 2, 3]))
    np.testing.assert_array_equal(L.columns([1, 3], np.asarray([1, 2, 3])), [0, 2])


def test_evaluation_batches_are_what_the_exported_graph_computes(cache):
    """Rule: training and serving cannot drift: an evaluation batch holds exactly preprocess() of each cached
    sequence on the full 543-point frame (the function inside the TFLite graph), in the order asked for."""
    from kit.training.pipeline import make_dataset

    cfg = Config(preprocess=PreprocessConfig(max_len=16, motion=True, dominant_hand=True))
    rows = np.arange(len(cache))[::-1]
    got = np.concatenate([x["features"].numpy() for x, _, _ in make_dataset(cache, rows, cfg, training=False,
                                                                            batch_size=5)])
    want = np.stack([preprocess(cache.frames(int(i)), cfg.preprocess)[0].numpy() for i in rows])
    np.testing.assert_array_equal(got, want)
    labels = np.concatenate([y.numpy().argmax(-1) for _, y, _ in make_dataset(cache, rows, cfg, training=False)])
    np.testing.assert_array_equal(labels, cache.labels[rows])


def test_every_pass_holds_every_sequence_once_in_a_seeded_order():
    """Rule: pass p is a permutation of the indices drawn from (seed, p): passes differ, seeds differ, and the
    stream started at element k is the tail of the stream started at 0 (what resume relies on)."""
    from kit.training.pipeline import training_order

    indices = np.arange(100, 137)
    stream = np.array([(int(i), int(p)) for i, p in training_order(indices, seed=3).take(3 * len(indices))])
    passes = stream[:, 0].reshape(3, len(indices))
    for p, order in enumerate(passes):
        assert sorted(order) == list(indices)
        assert (stream[p * len(indices):(p + 1) * len(indices), 1] == p).all()
    assert not np.array_equal(passes[0], passes[1])
    other = np.array([int(i) for i, _ in training_order(indices, seed=4).take(len(indices))])
    assert not np.array_equal(other, passes[0])
    tail = np.array([(int(i), int(p)) for i, p in training_order(indices, seed=3, skip=50).take(40)])
    np.testing.assert_array_equal(tail, stream[50:90])


def batches(cache, cfg, n, start_pass=0):
    from kit.training.pipeline import make_dataset

    ds = make_dataset(cache, np.arange(len(cache)), cfg, training=True, start_pass=start_pass)
    return [(x["features"].numpy(), y.numpy()) for x, y in ds.take(n)]


def test_training_batches_are_a_function_of_the_seed_and_resume_exactly(cache):
    """Rule: same seed, same batches (augmentations included); another seed, others; a run resumed after one
    epoch sees exactly the batches the uninterrupted run saw from its second epoch on."""
    from kit.training.pipeline import steps_per_pass

    cfg = Config(preprocess=PreprocessConfig(max_len=16),
                 train=TrainConfig(batch_size=4, mixup_alpha=0.4, rotate_deg=5, noise_std=0.001))
    steps = steps_per_pass(len(cache), 4)
    a, b = batches(cache, cfg, 2 * steps), batches(cache, cfg, 2 * steps)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], a[steps][0]), "each pass reshuffles"
    other = batches(cache, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=1)), 1)
    assert not np.array_equal(a[0][0], other[0][0])
    resumed = batches(cache, cfg, steps, start_pass=1)
    for (x, y), (x2, y2) in zip(resumed, a[steps:]):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)


def test_training_batches_are_full_and_augmented(cache):
    """Rule: every training batch has batch_size examples (passes run on without a short batch), and with
    mirroring on, some examples differ from the plain preprocessing of their sequence."""
    cfg = Config(preprocess=PreprocessConfig(max_len=16), train=TrainConfig(batch_size=5, mirror_prob=1.0))
    got = batches(cache, cfg, 6)
    assert all(len(x) == 5 for x, _ in got)
    plain = {preprocess(cache.frames(i), cfg.preprocess)[0].numpy().tobytes() for i in range(len(cache))}
    assert not any(example.tobytes() in plain for x, _ in got for example in x)


def test_resident_memory_is_86_points_of_float32_per_frame(cache):
    """Rule (the memory plan): RAM holds 86 landmarks x 3 float32 per cached frame, loaded once per cache,
    and they are the cache's values (float16 widened exactly)."""
    from kit.training.pipeline import RESIDENT, resident

    data = resident(cache)
    assert data is resident(cache)
    assert data.nbytes == int(cache.lengths.sum()) * len(RESIDENT) * 3 * 4
    assert data.frames.dtype == tf.float32
    for i in (0, len(cache) // 2, len(cache) - 1):
        np.testing.assert_array_equal(data.sequence(tf.constant(i, tf.int64)).numpy(), cache.frames(i)[:, RESIDENT])


def test_steps_per_epoch_sets_the_epoch_and_resume_follows_it(cache):
    """Rule: train.steps_per_epoch=S makes an epoch S batches (0: one pass), and a run resumed after one such
    epoch starts S batches into the stream; a negative value is a one-line error."""
    from kit.errors import KitError
    from kit.training.pipeline import steps_per_epoch

    cfg = Config(preprocess=PreprocessConfig(max_len=16), train=TrainConfig(batch_size=4, steps_per_epoch=2))
    assert steps_per_epoch(cfg, len(cache), 4) == 2
    assert steps_per_epoch(Config(train=TrainConfig(batch_size=4)), 10, 4) == 3
    whole = batches(cache, cfg, 4)
    resumed = batches(cache, cfg, 2, start_pass=1)
    for (x, _), (x2, _) in zip(resumed, whole[2:]):
        np.testing.assert_array_equal(x, x2)
    with pytest.raises(KitError, match="steps_per_epoch"):
        steps_per_epoch(Config(train=TrainConfig(steps_per_epoch=-1)), 10, 4)
