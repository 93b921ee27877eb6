"""Preprocessing, defined once: raw `[frames, 543, 3]` float32 with NaN -> model input `(features, mask)`.

The same TF ops run in the tf.data training pipeline and inside the exported TFLite graph, so training and
serving cannot drift. Only builtin TFLite ops are used (gather, boolean_mask, is_nan, where, reductions).

Recipe (26th place): keep x and y of both hands, 26 face points (lips, eyes) and 17 upper-body pose points;
move the head to the origin and divide by the spread of the kept points; NaN -> 0 after normalisation;
drop frames with no hand (keeping at least one); subsample to at most `max_len` frames; pad to `max_len`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kit import landmarks as L
from kit.config import PreprocessConfig

N_HAND_POINTS = len(L.LEFT_HAND) + len(L.RIGHT_HAND)  # the hands come first in L.SELECTED


def n_features(cfg: PreprocessConfig) -> int:
    """Width of one preprocessed frame."""
    return len(L.SELECTED) * (3 if cfg.use_z else 2)


def preprocess(frames: tf.Tensor, cfg: PreprocessConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """One raw sequence `[T, 543, 3]` -> features `[max_len, F]` float32 and mask `[max_len]` float32 (1 = real)."""
    frames = tf.convert_to_tensor(frames, tf.float32)
    channels = 3 if cfg.use_z else 2
    # A zero-length input still yields one (all-NaN) frame, so the model always sees at least one real step.
    pad_one = tf.fill([1, L.N_LANDMARKS, 3], np.float32(np.nan))
    frames = tf.concat([frames, pad_one], axis=0)[: tf.maximum(tf.shape(frames)[0], 1)]

    head = frames[:, L.HEAD, :channels]  # [T, C]
    points = tf.gather(frames, L.SELECTED, axis=1)[:, :, :channels]  # [T, P, C]

    if cfg.drop_handless:
        has_hand = tf.reduce_any(~tf.math.is_nan(points[:, :N_HAND_POINTS, 0]), axis=1)
        keep = tf.logical_or(has_hand, ~tf.reduce_any(has_hand))  # no hand anywhere: keep every frame
        points = tf.boolean_mask(points, keep)

    center = _nanmean(head, axis=0)  # [C]: the head's mean position over the sequence
    points = points - center
    scale = tf.sqrt(_nanmean(tf.square(points)))  # the spread of the kept points around the head
    points = points / tf.maximum(scale, 1e-6)
    points = tf.where(tf.math.is_nan(points), tf.zeros_like(points), points)

    points = _subsample(points, cfg.max_len)
    length = tf.shape(points)[0]
    features = tf.reshape(points, [length, len(L.SELECTED) * channels])
    features = tf.pad(features, [[0, cfg.max_len - length], [0, 0]])
    mask = tf.pad(tf.ones([length], tf.float32), [[0, cfg.max_len - length]])
    # Static shapes for the model; reshape (not ensure_shape, which is a Flex op) tells the converter.
    return tf.reshape(features, [cfg.max_len, len(L.SELECTED) * channels]), tf.reshape(mask, [cfg.max_len])


def _nanmean(x: tf.Tensor, axis=None) -> tf.Tensor:
    """Mean over the non-NaN entries; 0 where there are none."""
    valid = ~tf.math.is_nan(x)
    total = tf.reduce_sum(tf.where(valid, x, tf.zeros_like(x)), axis=axis)
    count = tf.reduce_sum(tf.cast(valid, tf.float32), axis=axis)
    return total / tf.maximum(count, 1.0)


def _subsample(points: tf.Tensor, max_len: int) -> tf.Tensor:
    """Keep at most `max_len` frames, evenly spaced over the whole sequence (cropping would lose the end)."""
    length = tf.shape(points)[0]
    step = tf.cast(tf.maximum(length, max_len), tf.float32) / float(max_len)
    idx = tf.cast(tf.range(max_len, dtype=tf.float32) * step, tf.int32)
    idx = tf.minimum(idx, length - 1)
    idx = tf.cond(length > max_len, lambda: idx, lambda: tf.range(length))
    return tf.gather(points, idx)


@keras.saving.register_keras_serializable(package="kit")
class Preprocess(keras.layers.Layer):
    """Keras face of `preprocess`: one raw sequence in, `(features, mask)` out. TF backend only (tf.data, TFLite)."""

    def __init__(self, max_len: int = 64, use_z: bool = False, drop_handless: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len
        self.use_z = use_z
        self.drop_handless = drop_handless

    @property
    def cfg(self) -> PreprocessConfig:
        return PreprocessConfig(max_len=self.max_len, use_z=self.use_z, drop_handless=self.drop_handless)

    def call(self, frames):
        return preprocess(frames, self.cfg)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_len": self.max_len, "use_z": self.use_z,
                "drop_handless": self.drop_handless}
