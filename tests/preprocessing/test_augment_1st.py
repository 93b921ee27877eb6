"""The 1st place's augmentations (kit.preprocessing.augment) do what its notebook's did: each fires at its
probability, draws in its ranges, and changes only what it should; masked and resampled sequences still
preprocess to finite features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from kit.config import Config, PreprocessConfig, apply_overrides
from kit.data import landmarks as L
from kit.preprocessing import augment
from kit.preprocessing.preprocess import keep_frames, preprocess

RESIDENT = augment.resident_landmarks()
FIRST = ["train.resample_prob=0.8", "train.random_crop=true", "train.affine_prob=0.75",
         "train.temporal_mask_prob=0.5", "train.spatial_mask_prob=0.5"]  # the notebook's augment_fn
N, T, MAX_LEN = 2000, 24, 16


def sequence(n: int = T, seed: int = 0, width: int = len(RESIDENT)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (n, width, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def drawn():
    """N draws of the whole chain over one 24-frame sequence in one graph call: every parameter, and each
    output's length."""
    cfg = apply_overrides(Config(), FIRST + [f"preprocess.max_len={MAX_LEN}"])
    frames = tf.constant(sequence())

    def one(number):
        out, params = augment.chain(frames, cfg, number, RESIDENT)
        params = {name: {k: tf.cast(v, tf.float32) for k, v in p.items()} for name, p in params.items()}
        return params, tf.shape(out)[0]

    signature = tf.nest.map_structure(lambda t: tf.TensorSpec([], t.dtype), one(tf.constant(0, tf.int64)))
    run = tf.function(lambda: tf.map_fn(one, tf.range(N, dtype=tf.int64), fn_output_signature=signature,
                                        parallel_iterations=64), autograph=False)
    params, lengths = tf.nest.map_structure(lambda t: t.numpy(), run())
    return params, lengths


def fires_at(fired: np.ndarray, prob: float) -> None:
    """The share fired is `prob` within 4.5 binomial standard deviations (a false alarm once in ~150,000)."""
    share, sd = fired.mean(), np.sqrt(prob * (1 - prob) / len(fired))
    assert abs(share - prob) < 4.5 * sd, f"fired {share:.3f} of the draws, expected {prob}"


def spans(values: np.ndarray, low: float, high: float, slack: float = 0.03) -> None:
    """In [low, high] and covering it: the extremes within `slack` of the range's ends."""
    assert values.min() >= low - 1e-6 and values.max() <= high + 1e-6, (values.min(), values.max())
    assert values.min() < low + slack * (high - low) and values.max() > high - slack * (high - low)


def test_each_augmentation_fires_at_its_probability(drawn):
    params, _ = drawn
    for name, prob in (("resample", 0.8), ("mirror", 0.5), ("affine", 0.75), ("temporal_mask", 0.5),
                       ("spatial_mask", 0.5)):
        fires_at(params[name]["fired"] > 0, prob)
    methods = params["resample"]["method"][params["resample"]["fired"] > 0]
    fires_at(methods == 0, 0.33)  # bilinear; else bicubic or nearest, 50/50
    fires_at(methods[methods > 0] == 1, 0.5)


def test_draws_stay_in_the_source_s_ranges_and_cover_them(drawn):
    params, _ = drawn
    spans(params["resample"]["rate"], 0.5, 1.5)
    affine = params["affine"]
    spans(affine["scale"], 0.8, 1.2)
    spans(affine["shear"], -0.15, 0.15)
    spans(affine["degrees"], -30, 30)
    spans(affine["shift"], -0.1, 0.1)
    fires_at(affine["shear_axis"] == 0, 0.5)
    box = params["spatial_mask"]
    spans(box["x0"], 0, 1)
    spans(box["y0"], 0, 1)
    spans(box["size"], 0.2, 0.4)
    fired = params["temporal_mask"]["fired"] > 0
    fraction = params["temporal_mask"]["fraction"][fired]
    lengths = params["crop"]["length"][fired]  # the mask sees the cropped sequence
    assert (fraction <= 0.4 + 1e-6).all() and (fraction >= np.floor(0.2 * lengths) / lengths - 1e-6).all()
    assert fraction.max() > 0.35
    assert (params["temporal_mask"]["size"][~fired] == 0).all()


def test_lengths_follow_rate_crop_and_clip(drawn):
    """Resampling makes int(rate x T) frames (at least 1); the crop then keeps max_len of them from an offset
    under clip(T' - max_len, 1, max_len)."""
    params, lengths = drawn
    rs = params["resample"]
    expected = np.where(rs["fired"] > 0, np.maximum(1, np.floor(rs["rate"].astype(np.float32) * np.float32(T))), T)
    np.testing.assert_array_equal(rs["length"], expected)
    crop = params["crop"]
    np.testing.assert_array_equal(crop["length"], np.minimum(rs["length"], MAX_LEN))
    np.testing.assert_array_equal(lengths, crop["length"])
    assert (crop["offset"] < np.clip(rs["length"] - MAX_LEN, 1, MAX_LEN)).all()
    assert crop["offset"].max() == np.clip(rs["length"].max() - MAX_LEN, 1, MAX_LEN) - 1
    np.testing.assert_array_equal(crop["fired"] > 0, rs["length"] > MAX_LEN)


@pytest.mark.parametrize("method", [0, 1, 2])
def test_resample_moves_each_point_in_time_only(method):
    """Each point is resized on its own: the same values on all 543 points and on the pipeline's layout, and a
    missing hand does not spread to its neighbouring landmark indices (the source's bicubic over the landmark
    axis did); nearest only repeats frames."""
    full = sequence(10, width=L.N_LANDMARKS)
    full[:, list(L.LEFT_HAND)] = np.nan
    out = augment.resample_to(tf.constant(full), tf.constant(17), tf.constant(method)).numpy()
    kept = augment.resample_to(tf.constant(full[:, RESIDENT]), tf.constant(17), tf.constant(method)).numpy()
    assert out.shape == (17, L.N_LANDMARKS, 3)
    np.testing.assert_array_equal(out[:, RESIDENT], kept)
    assert np.isnan(out[:, list(L.LEFT_HAND)]).all()
    others = [i for i in range(L.N_LANDMARKS) if i not in L.LEFT_HAND]
    assert np.isfinite(out[:, others]).all()
    if method == 2:
        assert all(any(np.array_equal(frame, f) for f in full[:, others]) for frame in out[:, others])


def test_crop_keeps_max_len_consecutive_frames():
    x = sequence(50)
    x[..., 0] = np.arange(50)[:, None]  # x holds the frame number
    seen = set()
    for k in range(40):
        out, p = augment.random_crop(tf.constant(x), 16, tf.constant([k, 0], tf.int64))
        numbers = out.numpy()[:, 0, 0]
        np.testing.assert_array_equal(numbers, int(p["offset"]) + np.arange(16))
        seen.add(int(p["offset"]))
    assert max(seen) < 16 and len(seen) > 8  # offsets in [0, clip(50 - 16, 1, 16)) = [0, 16)
    short, p = augment.random_crop(tf.constant(x[:10]), 16, tf.constant([1, 0], tf.int64))
    np.testing.assert_array_equal(short.numpy(), x[:10])
    assert not p["fired"]


def test_affine_maps_a_point_as_the_notebook_s_formula_does():
    """By hand: (0.7, 0.4, 0.1) x 1.1 = (0.77, 0.44, 0.11); shear on x by 0.1: [x, y] @ [[1, 0.1], [0, 1]] =
    (0.77, 0.517), centre (0.5, 0.6); turn 30 deg about it: (0.27, -0.083) @ [[c, s], [-s, c]] = (0.275327,
    0.063120), + centre = (0.775327, 0.663120); + 0.05 everywhere: (0.825327, 0.713120, 0.16)."""
    point = tf.constant([[[0.7, 0.4, 0.1], [np.nan, np.nan, np.nan]]], tf.float32)
    out = augment.affine(point, 1.1, 0.1, 0.0, 30.0, 0.05).numpy()
    np.testing.assert_allclose(out[0, 0], [0.825327, 0.713120, 0.16], atol=1e-5)
    assert np.isnan(out[0, 1]).all()


def test_affine_draws_apply_the_formula_and_identity_when_not_fired():
    x = sequence(5)
    for k in range(12):
        out, p = augment.random_spatial_affine(tf.constant(x), 0.5, 0.2, 0.15, 30.0, 0.1, tf.constant([k, 3], tf.int64))
        if not p["fired"]:
            np.testing.assert_array_equal(out.numpy(), x)
            continue
        on_x = float(p["shear_axis"] == 0)
        shear = float(p["shear"])
        expected = augment.affine(tf.constant(x), p["scale"], shear * on_x, shear * (1 - on_x), p["degrees"],
                                  p["shift"])
        np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_masks_write_nan_only():
    """The temporal mask blanks a run of whole frames, the spatial mask the points inside its box; nothing else
    changes."""
    x = sequence(30)
    x[3, :5] = np.nan  # points missing already stay missing
    temporal = spatial = 0
    for k in range(30):
        seed = tf.constant([k, 1], tf.int64)
        out, p = tf.nest.map_structure(np.asarray, augment.random_temporal_mask(tf.constant(x), 0.7, 0.2, 0.4, seed))
        changed = np.any(np.isnan(out) != np.isnan(x), axis=(1, 2))
        assert (np.isnan(out[changed])).all() and np.array_equal(out[~changed], x[~changed], equal_nan=True)
        frames = np.flatnonzero(np.isnan(out).all(axis=(1, 2)))
        if p["fired"]:
            temporal += 1
            assert len(frames) == int(p["size"]) == int(30 * float(p["fraction"]) + 1e-4)
            np.testing.assert_array_equal(frames, int(p["start"]) + np.arange(len(frames)))
        out, p = tf.nest.map_structure(np.asarray, augment.random_spatial_mask(tf.constant(x), 0.7, 0.2, 0.4, seed))
        inside = ((p["x0"] < x[..., 0]) & (x[..., 0] < p["x0"] + p["size"]) & (p["y0"] < x[..., 1]) &
                  (x[..., 1] < p["y0"] + p["size"]) & bool(p["fired"]))
        assert np.isnan(out[inside]).all()
        np.testing.assert_array_equal(out[~inside], x[~inside])
        spatial += int(inside.any())
        if p["fired"]:
            np.testing.assert_allclose(float(p["fraction"]), inside.sum() / np.isfinite(x[..., 0]).sum(), rtol=1e-5)
    assert temporal > 10 and spatial > 5


@pytest.mark.parametrize("preprocess_cfg", [PreprocessConfig(), PreprocessConfig(
    max_len=32, points="1st", center="face17", scale="axis_std", drop_frames="empty", long="first", diffs=2)],
    ids=["kit", "1st"])
def test_augmented_real_sequences_preprocess_to_finite_features(real_samples, preprocess_cfg):
    """Every real sample, with every augmentation firing (masks and resampling together), still preprocesses to
    finite features with at least one real step, on the kit's points and the 1st place's."""
    from kit.data.parquet import read_landmarks

    t = dataclasses.replace(Config().train, resample_prob=1.0, random_crop=True, affine_prob=1.0,
                            temporal_mask_prob=1.0, spatial_mask_prob=1.0, spatial_mask_min=0.4, mirror_prob=1.0)
    cfg = Config(preprocess=preprocess_cfg, train=t)

    @tf.function(input_signature=[tf.TensorSpec([None, len(RESIDENT), 3], tf.float32), tf.TensorSpec([], tf.int64)],
                 autograph=False)
    def features(frames, number):
        out, _ = augment.chain(keep_frames(frames, cfg.preprocess, RESIDENT), cfg, number, RESIDENT)
        return preprocess(out, cfg.preprocess, RESIDENT, frames_dropped=True)

    paths = sorted(real_samples.glob("**/*.parquet"))
    assert paths
    for path in paths:
        frames = read_landmarks(path)[:, RESIDENT]
        for number in range(4):
            feats, mask = features(frames, number)
            assert np.isfinite(feats.numpy()).all(), path.name
            assert mask.numpy().sum() >= 1
