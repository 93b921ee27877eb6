"""The tf.data input pipeline over the prepared cache: shuffle, augment, the shared preprocessing, batch, prefetch.

The order is a pure function of (seed, pass number): two runs with the same seed see the same batches.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kit import augment
from kit.cache import Cache
from kit.config import Config
from kit.landmarks import N_CLASSES, N_LANDMARKS
from kit.preprocess import preprocess


def make_dataset(cache: Cache, indices: np.ndarray, cfg: Config, training: bool, n_classes: int = N_CLASSES,
                 start_pass: int = 0, batch_size: int | None = None) -> tf.data.Dataset:
    """Batches of `({"features", "mask"}, one_hot_labels)` for the cache rows `indices`.

    Training batches are reshuffled on every pass from `cfg.train.seed`, mirrored with `cfg.train.mirror_prob` and
    mixed with `cfg.train.mixup_alpha`; evaluation batches keep the order of `indices`.
    """
    indices = np.asarray(indices, dtype=np.int64)
    rng = np.random.default_rng(cfg.train.seed)
    for _ in range(start_pass if training else 0):  # a resumed run sees the order it would have seen
        rng.permutation(indices)
    epochs = iter(range(start_pass, 1 << 62))

    def rows():  # called once per pass: each pass draws the next permutation from the seeded generator
        epoch = next(epochs)
        order = rng.permutation(indices) if training else indices
        for i in order:
            yield cache.frames(int(i)), np.int32(cache.labels[i]), np.int64(i * 1000 + epoch)

    signature = (
        tf.TensorSpec([None, N_LANDMARKS, 3], tf.float32),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.int64),
    )
    ds = tf.data.Dataset.from_generator(rows, output_signature=signature)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(indices)))  # lets Keras count steps per epoch
    seed = tf.constant(cfg.train.seed, tf.int64)

    def example(frames, label, draw):
        if training and cfg.train.mirror_prob > 0:
            frames = augment.random_mirror(frames, cfg.train.mirror_prob, tf.stack([draw, seed]))
        t = cfg.train
        if training and (t.rotate_deg or t.scale_range or t.noise_std):
            frames = augment.random_affine(frames, t.rotate_deg, t.scale_range, t.noise_std, tf.stack([draw, seed + 7]))
        features, mask = preprocess(frames, cfg.preprocess)
        return {"features": features, "mask": mask}, tf.one_hot(label, n_classes)

    ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size or cfg.train.batch_size, drop_remainder=False)
    if training and cfg.train.mixup_alpha > 0:
        # enumerate restarts every pass, so mixing pairs come from the shuffle, and draws from (step, seed)
        ds = ds.enumerate().map(
            lambda step, batch: augment.mixup(*batch, cfg.train.mixup_alpha, tf.stack([step, seed])),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
