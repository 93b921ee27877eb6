"""Training-time augmentations in TF ops, run inside the tf.data pipeline (never in the exported graph).

`mirror` acts on the raw `[T, 543, 3]` sequence before preprocessing, so it composes with any feature recipe;
`mixup` acts on preprocessed batches.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kit.data import landmarks as L
from kit.preprocessing.head import head as head_of

# Face-mesh left/right pairs of the points any preprocessing keeps: the 1st place's flip_lr pairs (its LLIP/RLIP,
# LEYE/REYE and LNOSE/RNOSE lists, which hold the kit's 26 lip and eye points too). Points on the face's middle
# line (lip centres 0, 13, 14, 17; nose 1, 2) map to themselves; other face points keep their index after a
# mirror, which is harmless because no preprocessing reads them.
_FACE_PAIRS = ((84, 314), (181, 405), (91, 321), (146, 375), (61, 291), (185, 409), (40, 270), (39, 269),
               (37, 267), (87, 317), (178, 402), (88, 318), (95, 324), (78, 308), (191, 415), (80, 310),
               (81, 311), (82, 312),  # lips
               (33, 263), (7, 249), (163, 390), (144, 373), (145, 374), (153, 380), (154, 381), (155, 382),
               (133, 362), (246, 466), (161, 388), (160, 387), (159, 386), (158, 385), (157, 384), (173, 398),
               (98, 327))  # eyes, then the nose's sides
# Pose left/right pairs: eyes, ears, mouth corners, shoulders, elbows, wrists, hand marks, hips, legs.
_POSE_PAIRS = ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
               (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32))


def mirror_permutation() -> np.ndarray:
    """Index map of a left-right mirror over the 543 landmarks: hands swap, paired face/pose points swap."""
    perm = np.arange(L.N_LANDMARKS)
    perm[list(L.LEFT_HAND)] = L.RIGHT_HAND
    perm[list(L.RIGHT_HAND)] = L.LEFT_HAND
    for base, pairs in ((L.OFFSET["face"], _FACE_PAIRS), (L.OFFSET["pose"], _POSE_PAIRS)):
        for a, b in pairs:
            perm[base + a], perm[base + b] = base + b, base + a
    return perm


_MIRROR = mirror_permutation()


def _mirror_maps(layout=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mirror as (flat gather index, multiplier, offset) over a frame flattened to (point, channel)."""
    perm = _MIRROR if layout is None else L.columns(_MIRROR[np.asarray(layout)], layout)
    flat_perm = (np.asarray(perm, np.int64)[:, None] * 3 + np.arange(3)).ravel().astype(np.int32)
    flip = np.tile(np.asarray([-1.0, 1.0, 1.0], np.float32), len(perm))  # x -> -x + 1, exactly 1 - x
    shift = np.tile(np.asarray([1.0, 0.0, 0.0], np.float32), len(perm))
    return flat_perm, flip, shift


def _remap(frames: tf.Tensor, flat_perm, flip, shift) -> tf.Tensor:
    # One gather over the flattened (point, channel) axis and a multiply-add: a third of the ops of
    # gather + slice + concat, and ops are what a per-sequence step in tf.data pays for.
    points = int(flip.shape[0]) // 3
    flat = tf.gather(tf.reshape(frames, [-1, points * 3]), flat_perm, axis=1) * flip + shift
    return tf.reshape(flat, [-1, points, 3])


def mirror(frames: tf.Tensor, layout=None) -> tf.Tensor:
    """Mirror a raw sequence: x -> 1 - x (MediaPipe x is in [0, 1] of the image width) and left <-> right.

    `layout`: the landmarks the frame holds (kit.data.landmarks.columns); None is all 543.
    """
    return _remap(frames, *_mirror_maps(layout))


def random_mirror(frames: tf.Tensor, prob: float, seed: tf.Tensor, layout=None) -> tf.Tensor:
    """Mirror with probability `prob`, drawn from a stateless seed so epochs are reproducible.

    The draw picks the index map (the mirror's or the identity), not the output: one gather either way.
    """
    flat_perm, flip, shift = _mirror_maps(layout)
    chosen = tf.random.stateless_uniform([], seed=seed) < prob
    identity = np.arange(len(flat_perm), dtype=np.int32)
    return _remap(frames, tf.where(chosen, flat_perm, identity), tf.where(chosen, flip, np.ones_like(flip)),
                  tf.where(chosen, shift, np.zeros_like(shift)))


def random_affine(frames: tf.Tensor, rotate_deg: float, scale_range: float, noise_std: float,
                  seed: tf.Tensor, layout=None) -> tf.Tensor:
    """Rotate (image plane) and zoom around the head (kit.preprocessing.head: the pose's nose in a frame without a
    face), then add Gaussian noise; NaN (missing) stays NaN."""
    draws = tf.random.stateless_uniform([2], seed=seed, minval=-1.0, maxval=1.0)
    angle = draws[0] * rotate_deg * np.pi / 180.0
    scale = 1.0 + draws[1] * scale_range
    head = head_of(frames, layout)[:, None, :2]  # [T, 1, 2]
    xy = frames[..., :2] - head
    cos, sin = tf.cos(angle), tf.sin(angle)
    x = scale * (cos * xy[..., 0] - sin * xy[..., 1])
    y = scale * (sin * xy[..., 0] + cos * xy[..., 1])
    out = tf.concat([tf.stack([x, y], axis=-1) + head, frames[..., 2:]], axis=-1)
    if noise_std > 0:
        out = out + tf.random.stateless_normal(tf.shape(out), seed=seed + 1, stddev=noise_std)
    return out


def mixup(inputs: dict, labels: tf.Tensor, alpha: float, seed: tf.Tensor) -> tuple[dict, tf.Tensor]:
    """Mix each example of a batch with another one of the same batch; padding masks are united."""
    batch = tf.shape(labels)[0]
    g1 = tf.random.stateless_gamma([batch], seed=seed, alpha=alpha)
    g2 = tf.random.stateless_gamma([batch], seed=seed + 1, alpha=alpha)
    lam = g1 / (g1 + g2)
    order = tf.random.experimental.stateless_shuffle(tf.range(batch), seed=seed + 2)
    lam_x = lam[:, None, None]
    features = lam_x * inputs["features"] + (1 - lam_x) * tf.gather(inputs["features"], order)
    mask = tf.maximum(inputs["mask"], tf.gather(inputs["mask"], order))
    labels = lam[:, None] * labels + (1 - lam[:, None]) * tf.gather(labels, order)
    return {"features": features, "mask": mask}, labels
