"""Training-time augmentations in TF ops, run inside the tf.data pipeline (never in the exported graph).

Every augmentation acts on a raw sequence `[T, K, 3]` (K = 543, or the landmarks of a `layout`: see
kit.data.landmarks.columns) before preprocessing, so it composes with any feature recipe; `mixup` acts on
preprocessed batches. `chain` runs them in the training order (the 1st place's) from one draw number, as
kit.training.pipeline does for each (sequence, pass), and `kit show --augment` (kit.seeing.augmented) does for N
draws of a file.

Draws are stateless: each augmentation takes a seed, draws its uniforms in one op, and returns its frames with
the parameters it drew (whether it fired, rate, angle, box, ...), so the training pipeline (which drops them)
and `kit show --augment` (which prints them) run one code path.
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


def resident_landmarks() -> np.ndarray:
    """The landmark indices any preprocessing option reads, closed under the mirror; sorted: the layout the
    training pipeline holds in RAM (kit.training.pipeline.RESIDENT) and `kit show --augment` augments.

    Everything `kit.preprocessing.preprocess` and `kit.preprocessing.features` read lies in `L.SELECTED` and
    `L.SELECTED_1ST` plus the head, its stand-in the pose's nose, and the 1st place's centre (their face
    references are lip, eye and nose points); the mirror maps that set onto itself once it is closed.
    """
    points = set(L.SELECTED) | set(L.SELECTED_1ST) | {L.HEAD, L.POSE_HEAD, L.CENTER_1ST}
    while True:
        closed = points | {int(_MIRROR[i]) for i in points}
        if closed == points:
            return np.asarray(sorted(points), dtype=np.int32)
        points = closed


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


def random_mirror(frames: tf.Tensor, prob: float, seed: tf.Tensor, layout=None) -> tuple[tf.Tensor, dict]:
    """Mirror with probability `prob`, drawn from a stateless seed so epochs are reproducible; `(frames,
    {"fired"})`.

    The draw picks the index map (the mirror's or the identity), not the output: one gather either way.
    """
    flat_perm, flip, shift = _mirror_maps(layout)
    chosen = tf.random.stateless_uniform([], seed=seed) < prob
    identity = np.arange(len(flat_perm), dtype=np.int32)
    frames = _remap(frames, tf.where(chosen, flat_perm, identity), tf.where(chosen, flip, np.ones_like(flip)),
                    tf.where(chosen, shift, np.zeros_like(shift)))
    return frames, {"fired": chosen}


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


# The 1st place's augmentations (hoyso48's ISLR notebook, commit 4bfc9db, cell 8: resample, temporal_crop,
# spatial_random_affine, temporal_mask, spatial_mask; its augment_fn runs them, and flip_lr, in chain's order).
# Each draws its uniforms in one stateless op; the integer draws (an offset in [0, n)) are floor(u x n), the
# source's tf.random.uniform over integers in distribution.

RESAMPLE_METHODS = ("bilinear", "bicubic", "nearest")  # `method` in a resample's parameters indexes this


def _below(u: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """An integer uniform in [0, n) from a uniform u in [0, 1) (n >= 1)."""
    return tf.minimum(tf.cast(u * tf.cast(n, tf.float32), tf.int32), n - 1)


def _between(u: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return low + (high - low) * u


def _nan_where(mask: tf.Tensor) -> tf.Tensor:
    """NaN where `mask`, else 0: added to the frames, it masks them (x + 0 is x), in about half the time of a
    tf.where broadcast over the channels (measured on 40 x 135 x 3 frames: 16 against 75 us)."""
    return tf.where(mask, np.float32(np.nan), np.float32(0))


def resample_to(frames: tf.Tensor, length: tf.Tensor, method: tf.Tensor) -> tf.Tensor:
    """The sequence resized in time to `length` frames by RESAMPLE_METHODS[method], every point on its own.

    The source resized `[T, 543, 3]` as an image of width 543 to (length, 543); tf.image.resize's bicubic kernel
    then also reads the two neighbouring landmark indices (with weight 0), so a missing neighbour turns a point
    NaN (of the source's 118 points: the left eye's 466 whenever the left hand is missing, the left wrist
    whenever the face is). The kit resizes `[T, 1, K x 3]`, time only: the same values wherever the source's
    were finite, no point reading another, and so the same on any layout.
    """
    points = frames.shape[1] if frames.shape[1] is not None else tf.shape(frames)[1]
    image = tf.reshape(frames, [tf.shape(frames)[0], 1, points * 3])
    size = tf.stack([length, 1])
    branches = [lambda m=m: tf.image.resize(image, size, m) for m in RESAMPLE_METHODS]
    return tf.reshape(tf.switch_case(method, branches), [length, points, 3])


def random_resample(frames: tf.Tensor, prob: float, low: float, high: float, seed: tf.Tensor):
    """With probability `prob`, the sequence resized in time by a rate uniform in [low, high] to int(rate x T)
    frames (at least 1): bilinear with probability 0.33, else bicubic or nearest, 50/50 (the source's resample
    and interp1d_). `(frames, {fired, rate, method, length})`."""
    u = tf.random.stateless_uniform([4], seed=seed)
    fired = u[0] < prob
    rate = _between(u[1], low, high)
    method = tf.where(u[2] < 0.33, 0, tf.where(u[3] < 0.5, 1, 2))
    length = tf.maximum(1, tf.cast(rate * tf.cast(tf.shape(frames)[0], tf.float32), tf.int32))
    out = tf.cond(fired, lambda: resample_to(frames, length, method), lambda: frames)
    return out, {"fired": fired, "rate": rate, "method": method, "length": tf.shape(out)[0]}


def random_crop(frames: tf.Tensor, max_len: int, seed: tf.Tensor):
    """`max_len` consecutive frames from an offset uniform in [0, clip(T - max_len, 1, max_len)): the source's
    temporal_crop, clip included (a sequence over twice max_len never loses its start past max_len frames).
    Shorter sequences stay whole. `(frames, {offset, length})`."""
    total = tf.shape(frames)[0]
    offset = _below(tf.random.stateless_uniform([], seed=seed), tf.clip_by_value(total - max_len, 1, max_len))
    out = frames[offset:offset + max_len]
    return out, {"fired": total > max_len, "offset": offset, "length": tf.shape(out)[0]}


def affine(frames: tf.Tensor, scale, shear_x, shear_y, degrees, shift) -> tf.Tensor:
    """The source's spatial_random_affine for given values: x, y, z times `scale` about the origin; then
    [x, y] @ [[1, shear_x], [shear_y, 1]], the centre (0.5, 0.5) moved by (shear_y, shear_x); then [x, y] - c
    @ [[cos, sin], [-sin, cos]] + c, `degrees` turned; then `shift` added to x, y and z.

    Composed into one [x, y, z] @ M + b (one matmul over the sequence instead of a dozen passes); a point
    missing any coordinate comes out missing all three (a missing landmark is missing in all three anyway).
    """
    radians = tf.cast(degrees, tf.float32) * (np.pi / 180.0)
    cos, sin = tf.cos(radians), tf.sin(radians)
    cx, cy = 0.5 + shear_y, 0.5 + shear_x
    zero, one = tf.zeros_like(cos), tf.ones_like(cos)
    # x' = s (x + shear_y y), y' = s (shear_x x + y); turned about c: (x' - cx) cos - (y' - cy) sin + cx, ...
    matrix = scale * tf.stack([tf.stack([cos - shear_x * sin, sin + shear_x * cos, zero]),
                               tf.stack([shear_y * cos - sin, shear_y * sin + cos, zero]),
                               tf.stack([zero, zero, one])])
    bias = tf.stack([cx * (1 - cos) + cy * sin, cy * (1 - cos) - cx * sin, zero]) + shift
    flat = tf.reshape(frames, [-1, 3]) @ matrix + bias
    return tf.reshape(flat, tf.shape(frames))


def random_spatial_affine(frames: tf.Tensor, prob: float, scale: float, shear: float, degrees: float,
                          shift: float, seed: tf.Tensor):
    """With probability `prob`, `affine` with a scale uniform in 1 +- scale, a shear uniform in +-shear on x or
    on y (50/50), a turn uniform in +-degrees and one shift uniform in +-shift. `(frames, {fired, scale,
    shear_axis (0 x, 1 y), shear, degrees, shift})`."""
    u = tf.random.stateless_uniform([6], seed=seed)
    fired = u[0] < prob
    params = {"fired": fired, "scale": _between(u[1], 1 - scale, 1 + scale), "shear": _between(u[2], -shear, shear),
              # the source: shear_x = 0 (a shear of y) when its draw is under 0.5, else shear_y = 0
              "shear_axis": tf.where(u[3] < 0.5, 1, 0), "degrees": _between(u[4], -degrees, degrees),
              "shift": _between(u[5], -shift, shift)}
    on_x = tf.cast(params["shear_axis"] == 0, tf.float32)
    out = tf.cond(fired, lambda: affine(frames, params["scale"], params["shear"] * on_x,
                                        params["shear"] * (1 - on_x), params["degrees"], params["shift"]),
                  lambda: frames)
    return out, params


def random_temporal_mask(frames: tf.Tensor, prob: float, low: float, high: float, seed: tf.Tensor):
    """With probability `prob`, int(T x u) consecutive frames (u uniform in [low, high]) from an offset uniform in
    [0, clip(T - size, 1, T)) set NaN at every point, as a frame with nothing seen (the source's temporal_mask).
    `(frames, {fired, start, size, fraction: of the frames masked})`."""
    u = tf.random.stateless_uniform([3], seed=seed)
    fired = u[0] < prob
    total = tf.shape(frames)[0]
    size = tf.cast(tf.cast(total, tf.float32) * _between(u[1], low, high), tf.int32) * tf.cast(fired, tf.int32)
    start = _below(u[2], tf.clip_by_value(total - size, 1, total))
    t = tf.range(total)
    out = frames + _nan_where((t >= start) & (t < start + size))[:, None, None]
    fraction = tf.cast(size, tf.float32) / tf.cast(tf.maximum(total, 1), tf.float32)
    return out, {"fired": fired, "start": start, "size": size, "fraction": fraction}


def random_spatial_mask(frames: tf.Tensor, prob: float, low: float, high: float, seed: tf.Tensor):
    """With probability `prob`, every point strictly inside a square of the image set NaN (x, y and z): corner
    (x0, y0) uniform in [0, 1)^2, side uniform in [low, high] (the source's spatial_mask). `(frames, {fired, x0,
    y0, size, fraction: of the seen points masked})`."""
    u = tf.random.stateless_uniform([4], seed=seed)
    fired = u[0] < prob
    x0, y0, size = u[1], u[2], _between(u[3], low, high)
    x, y = frames[..., 0], frames[..., 1]
    out = frames + _nan_where(fired & (x0 < x) & (x < x0 + size) & (y0 < y) & (y < y0 + size))[..., None]
    # for kit show --augment; the training pipeline never reads it, so its ops are pruned there
    missing = lambda f: tf.reduce_sum(tf.cast(tf.math.is_nan(f[..., 0]), tf.float32))  # noqa: E731
    seen = tf.cast(tf.size(frames[..., 0]), tf.float32) - missing(frames)
    fraction = (missing(out) - missing(frames)) / tf.maximum(seen, 1.0)
    return out, {"fired": fired, "x0": x0, "y0": y0, "size": size, "fraction": fraction}


# Seeds are (draw, train.seed + SEED_OFFSET[name]): the mirror's and the 80th place's affine keep the seeds they
# had before the 1st place's augmentations joined (the affine's noise draws from its seed + 1, hence no 8).
SEED_OFFSET = {"mirror": 0, "affine80": 7, "resample": 11, "crop": 12, "affine": 13, "temporal_mask": 14,
               "spatial_mask": 15}
ORDER = ("resample", "mirror", "crop", "affine", "affine80", "temporal_mask", "spatial_mask")  # the source's


@tf.autograph.experimental.do_not_convert  # no Python control flow on tensors: AutoGraph would only cost seconds
def chain(frames: tf.Tensor, cfg, draw: tf.Tensor, layout=None) -> tuple[tf.Tensor, dict]:
    """Every augmentation `cfg.train` sets, in ORDER, on a sequence whose frames `keep_frames` already kept;
    `(frames, {name: parameters})` for the ones that ran.

    `draw` numbers the draw (the pipeline: sequence x 1000 + pass). An augmentation whose probability is 0 (or
    random_crop false, or no rotate/scale/noise for the 80th place's) adds no op. The random crop keeps
    `cfg.preprocess.max_len` frames; the 80th place's affine reports no parameters.
    """
    t = cfg.train
    base = tf.constant(t.seed, tf.int64)
    draw = tf.cast(draw, tf.int64)

    def seed(name):
        return tf.stack([draw, base + SEED_OFFSET[name]])

    params = {}
    if t.resample_prob > 0:
        frames, params["resample"] = random_resample(frames, t.resample_prob, t.resample_min, t.resample_max,
                                                     seed("resample"))
    if t.mirror_prob > 0:
        frames, params["mirror"] = random_mirror(frames, t.mirror_prob, seed("mirror"), layout)
    if t.random_crop:
        frames, params["crop"] = random_crop(frames, cfg.preprocess.max_len, seed("crop"))
    if t.affine_prob > 0:
        frames, params["affine"] = random_spatial_affine(frames, t.affine_prob, t.affine_scale, t.affine_shear,
                                                         t.affine_degrees, t.affine_shift, seed("affine"))
    if t.rotate_deg or t.scale_range or t.noise_std:
        frames = random_affine(frames, t.rotate_deg, t.scale_range, t.noise_std, seed("affine80"), layout)
    if t.temporal_mask_prob > 0:
        frames, params["temporal_mask"] = random_temporal_mask(frames, t.temporal_mask_prob, t.temporal_mask_min,
                                                               t.temporal_mask_max, seed("temporal_mask"))
    if t.spatial_mask_prob > 0:
        frames, params["spatial_mask"] = random_spatial_mask(frames, t.spatial_mask_prob, t.spatial_mask_min,
                                                             t.spatial_mask_max, seed("spatial_mask"))
    return frames, params


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
