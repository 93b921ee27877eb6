"""The 80th-place feature options of the preprocessing layer, in builtin TFLite ops (no atan2, acos or Flex).

Each function takes the kept points of a sequence, `[T, P, C]` (P in the order of `selected_points`, already moved
to the head and divided by the unit of length, NaN where a hand is missing) and returns per-frame features
`[T, E]`. `kit.preprocessing.preprocess` calls them; nothing else should, so that training and serving stay identical.

Angles are given as cosines: as informative as the angle for a classifier, and arccos is not a builtin op.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kit.data import landmarks as L
from kit.config import PreprocessConfig
from kit.preprocessing.augment import mirror

# Wrist and the 5 fingertips: the hand points whose distances to the face say where the sign is made.
_HAND_TIPS = (L.HAND_WRIST,) + L.HAND_FINGERTIPS
# Face references: nose tip, upper and lower lip centre, outer eye corners.
_FACE_REFS = (L.OFFSET["face"] + L.NOSE_FACE, L.OFFSET["face"] + 0, L.OFFSET["face"] + 17,
              L.OFFSET["face"] + 33, L.OFFSET["face"] + 263)
# Finger joints as (previous, joint, next) along each finger: 3 bends a finger, 15 a hand.
_JOINTS = tuple((finger[i - 1], finger[i], finger[i + 1])
                for finger in ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (0, 9, 10, 11, 12), (0, 13, 14, 15, 16),
                               (0, 17, 18, 19, 20))
                for i in range(1, 4))
# The elbow's angle between the shoulder and the wrist, per arm (pose indices).
_ARMS = ((L.POSE_LEFT_SHOULDER, L.POSE_LEFT_ELBOW, L.POSE_LEFT_WRIST),
         (L.POSE_RIGHT_SHOULDER, L.POSE_RIGHT_ELBOW, L.POSE_RIGHT_WRIST))


def hands(cfg: PreprocessConfig) -> tuple[tuple[int, ...], ...]:
    """The hands the features keep: the dominant one (mirrored to be the right) or both."""
    return (L.RIGHT_HAND,) if cfg.dominant_hand else (L.LEFT_HAND, L.RIGHT_HAND)


def selected_points(cfg: PreprocessConfig) -> tuple[int, ...]:
    """The 543-frame indices of the points the model sees. points=kit: hands first, then face, eyes, pose and
    references; points=1st: the 1st place's 118 in its order (lips, left hand, right hand, nose, eyes)."""
    if cfg.points == "1st":
        return L.SELECTED_1ST
    rest = tuple(i for i in L.SELECTED if i not in L.LEFT_HAND + L.RIGHT_HAND)
    extra = tuple(i for i in _FACE_REFS if i not in rest) if cfg.distances else ()
    return sum(hands(cfg), ()) + rest + extra


def n_coordinates(cfg: PreprocessConfig) -> int:
    """How many of `selected_points` the model sees as coordinates (the face references only serve distances)."""
    if cfg.points == "1st":
        return len(L.SELECTED_1ST)
    return len(L.SELECTED) - (len(L.LEFT_HAND) if cfg.dominant_hand else 0)


def n_extra(cfg: PreprocessConfig) -> int:
    """Width of the per-frame features these options add to the coordinates."""
    n_hands = len(hands(cfg))
    width = 0
    if cfg.distances:
        width += n_hands * (len(_HAND_TIPS) * len(_FACE_REFS) + len(L.HAND_FINGERTIPS))
    if cfg.angles:
        width += n_hands * len(_JOINTS) + len(_ARMS)
    return width


def _position(cfg: PreprocessConfig):
    where = {index: i for i, index in enumerate(selected_points(cfg))}
    return lambda index: where[index]


def dominant_first(frames: tf.Tensor, layout=None) -> tf.Tensor:
    """Mirror the sequence when the left hand is missing in fewer frames than the right: the dominant hand is
    then always the right one (x -> 1 - x and left <-> right, the mirror of the training augmentation)."""
    def missing(hand: str) -> tf.Tensor:  # frames without this hand (its wrist stands for the whole hand)
        wrist = int(L.columns([L.OFFSET[hand] + L.HAND_WRIST], layout)[0])
        return tf.reduce_sum(tf.cast(tf.math.is_nan(frames[:, wrist, 0]), tf.int32))

    return tf.cond(missing("left_hand") < missing("right_hand"), lambda: mirror(frames, layout), lambda: frames)


def active_span(points: tf.Tensor, n_hand_points: int, min_motion: float = 0.01) -> tuple[tf.Tensor, tf.Tensor]:
    """[first, last] frames of the sign: idle frames at the start and end (no hand in view, or the hands moving
    less than `min_motion` units to either neighbour) are cut; idle frames inside the sign are kept.
    All idle: every frame."""
    hand = points[:, :n_hand_points]
    step = tf.abs(hand[1:] - hand[:-1])  # [T-1, H, C], NaN where a hand is missing in either frame
    seen = ~tf.math.is_nan(step)
    moved = tf.reduce_sum(tf.where(seen, step, tf.zeros_like(step)), axis=[1, 2]) / tf.maximum(
        tf.reduce_sum(tf.cast(seen, tf.float32), axis=[1, 2]), 1.0)  # [T-1]: from frame t to t+1
    zero = tf.zeros([1], tf.float32)
    motion = tf.maximum(tf.concat([zero, moved], axis=0), tf.concat([moved, zero], axis=0))  # to either neighbour
    visible = tf.reduce_any(~tf.math.is_nan(hand[:, :, 0]), axis=1)
    active = tf.logical_and(visible, motion >= min_motion)
    length = tf.shape(points)[0]
    any_active = tf.reduce_any(active)
    first = tf.where(any_active, tf.argmax(tf.cast(active, tf.int32), output_type=tf.int32), 0)
    last = tf.where(any_active, length - 1 - tf.argmax(tf.cast(active[::-1], tf.int32), output_type=tf.int32),
                    length - 1)
    return first, last


def _take(points: tf.Tensor, idx) -> tf.Tensor:
    return tf.gather(points, np.asarray(idx, np.int32), axis=1)


def _norm(v: tf.Tensor) -> tf.Tensor:
    return tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1))


def _cosine(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(a * b, axis=-1) / tf.maximum(_norm(a) * _norm(b), 1e-6)


def distances(points: tf.Tensor, cfg: PreprocessConfig) -> tf.Tensor:
    """Per hand: distance of the wrist and each fingertip to the nose, lips and eye corners, and of the wrist to
    each fingertip, in units of the sequence's length unit. `[T, n_hands * 35]`, NaN where the hand is missing."""
    at = _position(cfg)
    out = []
    for hand in hands(cfg):
        tips = _take(points, [at(hand[i]) for i in _HAND_TIPS])  # [T, 6, C]
        face = _take(points, [at(i) for i in _FACE_REFS])  # [T, 5, C]
        out.append(tf.reshape(_norm(tips[:, :, None] - face[:, None]), [-1, len(_HAND_TIPS) * len(_FACE_REFS)]))
        out.append(_norm(tips[:, 1:] - tips[:, :1]))
    return tf.concat(out, axis=1)


def angles(points: tf.Tensor, cfg: PreprocessConfig) -> tf.Tensor:
    """Cosines of the 15 finger-joint bends per hand and of each elbow's shoulder-elbow-wrist angle."""
    at = _position(cfg)
    out = []
    for hand in hands(cfg):
        prev, joint, nxt = (_take(points, [at(hand[j[k]]) for j in _JOINTS]) for k in range(3))
        out.append(_cosine(prev - joint, nxt - joint))
    pose = L.OFFSET["pose"]
    shoulder, elbow, wrist = (_take(points, [at(pose + arm[k]) for arm in _ARMS]) for k in range(3))
    out.append(_cosine(shoulder - elbow, wrist - elbow))
    return tf.concat(out, axis=1)


def unit_shoulders(points: tf.Tensor, cfg: PreprocessConfig) -> tf.Tensor:
    """Mean shoulder width over the frames where both shoulders are seen; NaN if never."""
    at = _position(cfg)
    pose = L.OFFSET["pose"]
    width = _norm(points[:, at(pose + L.POSE_LEFT_SHOULDER)] - points[:, at(pose + L.POSE_RIGHT_SHOULDER)])
    seen = ~tf.math.is_nan(width)
    return tf.reduce_sum(tf.where(seen, width, tf.zeros_like(width))) / tf.reduce_sum(tf.cast(seen, tf.float32))


def forward_diffs(coords: tf.Tensor, k: int) -> tf.Tensor:
    """x(t + k) - x(t) of every coordinate, NaN past the end (0 once preprocessing zeroes NaN): `[T, D]`.

    The 1st place's dx (k = 1) and dx2 (k = 2). Built from a shifted copy cut back to T rows, so a sequence of at
    most k frames gets all NaN with no branch."""
    length = tf.shape(coords)[0]
    tail = tf.fill([k, tf.shape(coords)[1]], np.float32(np.nan))
    return tf.concat([coords[k:], tail], axis=0)[:length] - coords


def motion(coords: tf.Tensor) -> tf.Tensor:
    """Velocity and acceleration of every coordinate between consecutive frames (0 at the start): `[T, 2 * D]`."""
    velocity = tf.concat([tf.zeros_like(coords[:1]), coords[1:] - coords[:-1]], axis=0)
    acceleration = tf.concat([tf.zeros_like(velocity[:1]), velocity[1:] - velocity[:-1]], axis=0)
    return tf.concat([velocity, acceleration], axis=1)
