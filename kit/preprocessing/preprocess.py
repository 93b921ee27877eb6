"""Preprocessing, defined once: raw `[frames, 543, 3]` float32 with NaN -> model input `(features, mask)`.

The same TF ops run in the tf.data training pipeline and inside the exported TFLite graph, so training and
serving cannot drift. Only builtin TFLite ops are used (gather, boolean_mask, is_nan, where, reductions).

The kit's default (kit/config.py says why, option by option): x and y of both hands, 26 face points (lips, eyes)
and 17 upper-body pose points (the 26th place's counts); frames with no hand dropped first (keeping at least one);
the head (kit/preprocessing/head.py: the nose, the pose's nose in frames without a face) moved to the origin and the
kept points divided by their spread (the kit's choice: the 26th place did not scale); NaN (a missing hand, a frame
without a face) -> 0 after normalisation; at most `max_len` frames, evenly subsampled; padded to `max_len` for
training batches, or (`pad=False`, the exported graph) the real frames only: padding is most of the compute at
inference (real sequences have a median of ~19 frames) and the models are exact under their mask, so the answer is
the same (the export's parity gate proves it on every length it probes).

The 1st place's preprocessing (its notebook's cells 7-8; kit/recipes.py names each): its 118 points
(`points=1st`), the mean of face point 17 as the origin (`center=face17`), each axis' std as the unit
(`scale=axis_std`), frames dropped only where every kept point is missing (`drop_frames=empty`), the first
`max_len` frames (`long=first`), and forward differences of 1 and 2 frames (`diffs=2`): 708 channels.

Options (80th place, kit/preprocessing/features.py, all off by default): the dominant hand only, mirrored to be the
right; shoulder width as the unit of length; hand-to-face and wrist-to-fingertip distances; finger-joint and elbow
angles; velocity and acceleration; idle frames cut at the start and end. Frame layout:
[coordinates | distances | angles | velocity | acceleration | forward differences].
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kit.preprocessing import features as F
from kit.data import landmarks as L
from kit.config import PreprocessConfig
from kit.preprocessing.head import head as head_of


def n_features(cfg: PreprocessConfig) -> int:
    """Width of one preprocessed frame: [coordinates | distances | angles | velocity, acceleration | diffs]."""
    coords = F.n_coordinates(cfg) * (3 if cfg.use_z else 2)
    return coords * (3 if cfg.motion else 1) + F.n_extra(cfg) + coords * cfg.diffs


def keep_frames(frames: tf.Tensor, cfg: PreprocessConfig, layout=None) -> tf.Tensor:
    """The frames `preprocess.drop_frames` keeps, from a raw sequence `[T, 543 or len(layout), 3]`.

    handless: frames with at least one hand point seen; empty: frames with at least one of the kept points seen
    (the 1st place's filter); none: all. A sequence with no such frame keeps every frame, so there is always
    one. The training pipeline calls this before its augmentations (a masked frame is then trained on, not
    dropped, as the 1st place did) and `preprocess` with `frames_dropped=True`; the exported graph calls it
    through `preprocess`."""
    if cfg.drop_frames == "none":
        return frames
    points = L.LEFT_HAND + L.RIGHT_HAND if cfg.drop_frames == "handless" else F.selected_points(cfg)
    seen = ~tf.math.is_nan(tf.gather(frames, L.columns(points, layout), axis=1))
    keep = tf.reduce_any(seen, axis=[1, 2])
    keep = tf.logical_or(keep, ~tf.reduce_any(keep))  # none seen anywhere: keep every frame
    return tf.boolean_mask(frames, keep)


def preprocess(frames: tf.Tensor, cfg: PreprocessConfig, layout=None, pad: bool = True,
               frames_dropped: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
    """One raw sequence `[T, 543, 3]` -> features `[max_len, F]` float32 and mask `[max_len]` float32 (1 = real).

    `pad=False` (the exported graph): features `[n, F]` and a mask of n ones, n the real frames (1..max_len).

    `layout`: the training pipeline passes frames holding only the landmarks it keeps in RAM (`[T, K, 3]`,
    kit.training.pipeline.RESIDENT); the same ops then index those columns. None (the files, the exported graph): 543.
    `frames_dropped`: `keep_frames` already ran (the training pipeline, before its augmentations).
    """
    frames = tf.convert_to_tensor(frames, tf.float32)
    channels = 3 if cfg.use_z else 2
    width = L.N_LANDMARKS if layout is None else len(layout)
    # A zero-length input still yields one (all-NaN) frame, so the model always sees at least one real step.
    pad_one = tf.fill([1, width, 3], np.float32(np.nan))
    frames = tf.concat([frames, pad_one], axis=0)[: tf.maximum(tf.shape(frames)[0], 1)]
    if not frames_dropped:
        frames = keep_frames(frames, cfg, layout)
    if cfg.dominant_hand:
        frames = F.dominant_first(frames, layout)

    n_hand_points = sum(len(hand) for hand in F.hands(cfg))  # points=kit: the hands come first
    points = tf.gather(frames, L.columns(F.selected_points(cfg), layout), axis=1)[:, :, :channels]  # [T, P, C]

    points = points - _center(frames, cfg, layout)[:channels]
    kept = points[:, : F.n_coordinates(cfg)]
    if cfg.scale == "axis_std":  # each axis' std about the origin, over every frame and kept point
        unit = tf.sqrt(_nanmean(tf.square(kept), axis=[0, 1]))
    elif cfg.scale == "spread":  # one RMS distance of the kept coordinates from the origin
        unit = tf.sqrt(_nanmean(tf.square(kept)))
    else:
        unit = tf.ones([], tf.float32)
    if cfg.shoulder_unit:
        shoulders = F.unit_shoulders(points, cfg)
        unit = tf.where(tf.logical_and(shoulders > 1e-6, ~tf.math.is_nan(shoulders)), shoulders, unit)
    points = points / tf.maximum(unit, 1e-6)
    if cfg.trim_idle:
        first, last = F.active_span(points, n_hand_points)
        points = points[first: last + 1]

    points = points[: cfg.max_len] if cfg.long == "first" else _subsample(points, cfg.max_len)
    length = tf.shape(points)[0]
    coords = tf.reshape(points[:, : F.n_coordinates(cfg)], [length, F.n_coordinates(cfg) * channels])
    parts = [coords]
    if cfg.distances:
        parts.append(F.distances(points, cfg))
    if cfg.angles:
        parts.append(F.angles(points, cfg))
    if cfg.motion:
        parts.append(F.motion(coords))
    parts += [F.forward_diffs(coords, k) for k in range(1, cfg.diffs + 1)]
    features = tf.concat(parts, axis=1) if len(parts) > 1 else coords
    features = tf.where(tf.math.is_nan(features), tf.zeros_like(features), features)
    width = n_features(cfg)
    if not pad:
        return tf.reshape(features, [length, width]), tf.ones([length], tf.float32)
    features = tf.pad(features, [[0, cfg.max_len - length], [0, 0]])
    mask = tf.pad(tf.ones([length], tf.float32), [[0, cfg.max_len - length]])
    # Static shapes for the model; reshape (not ensure_shape, which is a Flex op) tells the converter.
    return tf.reshape(features, [cfg.max_len, width]), tf.reshape(mask, [cfg.max_len])


def _center(frames: tf.Tensor, cfg: PreprocessConfig, layout=None) -> tf.Tensor:
    """`[3]`: the sequence's origin. head: the head's mean position (kit/preprocessing/head.py); face17: face point
    17's mean over the frames that see it, 0.5 on every axis where none does (the 1st place's rule)."""
    if cfg.center == "head":
        return _nanmean(head_of(frames, layout), axis=0)
    point = frames[:, int(L.columns([L.CENTER_1ST], layout)[0])]  # [T, 3]
    seen = tf.reduce_sum(tf.cast(~tf.math.is_nan(point), tf.float32), axis=0)
    return tf.where(seen > 0, _nanmean(point, axis=0), tf.fill([3], np.float32(0.5)))


def _nanmean(x: tf.Tensor, axis=None) -> tf.Tensor:
    """Mean over the non-NaN entries; 0 where there are none."""
    valid = ~tf.math.is_nan(x)
    total = tf.reduce_sum(tf.where(valid, x, tf.zeros_like(x)), axis=axis)
    count = tf.reduce_sum(tf.cast(valid, tf.float32), axis=axis)
    return total / tf.maximum(count, 1.0)


def _subsample(points: tf.Tensor, max_len: int) -> tf.Tensor:
    """Keep at most `max_len` frames, evenly spaced over the whole sequence (cropping would lose the end).

    One formula for both cases (no branch: a conditional costs more than the arithmetic, in tf.data and in
    TFLite): a sequence of at most `max_len` frames has step 1 and keeps every frame.
    """
    length = tf.shape(points)[0]
    step = tf.cast(tf.maximum(length, max_len), tf.float32) / float(max_len)
    idx = tf.cast(tf.range(tf.minimum(length, max_len), dtype=tf.float32) * step, tf.int32)
    return tf.gather(points, tf.minimum(idx, length - 1))


@keras.saving.register_keras_serializable(package="kit")
class Preprocess(keras.layers.Layer):
    """Keras face of `preprocess`: one raw sequence in, `(features, mask)` out. TF backend only (tf.data, TFLite).

    Takes the fields of PreprocessConfig as keyword arguments: `Preprocess(max_len=64, motion=True)`.
    """

    def __init__(self, name=None, dtype=None, trainable=True, **options):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.cfg = PreprocessConfig(**options)

    def call(self, frames):
        return preprocess(frames, self.cfg)

    def get_config(self) -> dict:
        return {**super().get_config(), **dataclasses.asdict(self.cfg)}
