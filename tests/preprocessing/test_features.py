"""The feature options of the one preprocessing layer: each computes what its name promises, in TFLite too."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from kit.preprocessing import features as F
from kit.data import landmarks as L
from kit.preprocessing.augment import mirror
from kit.config import PreprocessConfig
from kit.contract.evaluate import load_scorer_frames
from kit.preprocessing.preprocess import Preprocess, n_features, preprocess

OPTIONS = ("dominant_hand", "shoulder_unit", "distances", "angles", "motion", "trim_idle")
ALL = PreprocessConfig(max_len=32, **{name: True for name in OPTIONS})
POSE, FACE = L.OFFSET["pose"], L.OFFSET["face"]


def body(frames: int = 6, seed: int = 0) -> np.ndarray:
    """A plausible signer: face and pose everywhere, a right hand that moves every frame, no left hand."""
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.uniform(0.3, 0.7, (1, L.N_LANDMARKS, 3)).astype(np.float32), frames, axis=0)
    x[:, list(L.LEFT_HAND)] = np.nan
    x[:, list(L.RIGHT_HAND), :2] += np.linspace(0, 0.2, frames, dtype=np.float32)[:, None, None]
    return x


def run(frames: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    features, mask = preprocess(frames, cfg)
    return features.numpy(), mask.numpy()


def column(cfg: PreprocessConfig, part: str) -> int:
    """Where a part of the frame layout starts: [coordinates | distances | angles | velocity | acceleration]."""
    coords = F.n_coordinates(cfg) * (3 if cfg.use_z else 2)
    n_hands = len(F.hands(cfg))
    starts = {"distances": coords}
    starts["angles"] = starts["distances"] + (n_hands * 35 if cfg.distances else 0)
    starts["velocity"] = starts["angles"] + (n_hands * 15 + 2 if cfg.angles else 0)
    return starts[part]


@pytest.mark.parametrize("option", OPTIONS + ("all",))
def test_width_matches_n_features_and_nothing_is_nan(option):
    """Every option alone and all together: [max_len, n_features] with no NaN, padding left at zero."""
    cfg = ALL if option == "all" else PreprocessConfig(max_len=32, **{option: True})
    features, mask = run(body(9), cfg)
    assert features.shape == (32, n_features(cfg)) and np.isfinite(features).all()
    assert np.all(features[mask == 0] == 0)


def test_dominant_hand_makes_a_left_handed_signer_look_right_handed():
    """With dominant_hand, a sequence and its mirror image (the same sign by a left-handed signer) give the same
    features; only one hand is kept, so the width shrinks by 21 points."""
    frames = body(7)
    cfg = PreprocessConfig(max_len=16, dominant_hand=True)
    right, _ = run(frames, cfg)
    left, _ = run(mirror(frames).numpy(), cfg)
    np.testing.assert_allclose(left, right, atol=1e-5)
    assert n_features(cfg) == n_features(PreprocessConfig()) - 21 * 2


def test_shoulder_unit_measures_in_shoulder_widths():
    """With shoulder_unit, the shoulders come out exactly one unit apart, whatever the camera distance."""
    frames = body(5)
    frames[:, POSE + L.POSE_LEFT_SHOULDER, :2] = [0.7, 0.6]
    frames[:, POSE + L.POSE_RIGHT_SHOULDER, :2] = [0.3, 0.6]
    cfg = PreprocessConfig(max_len=8, shoulder_unit=True)
    features, mask = run(frames, cfg)
    points = features[mask == 1].reshape(-1, len(L.SELECTED), 2)
    at = {index: i for i, index in enumerate(L.SELECTED)}
    width = np.linalg.norm(points[:, at[POSE + 11]] - points[:, at[POSE + 12]], axis=-1)
    np.testing.assert_allclose(width, 1.0, atol=1e-5)
    zoomed = frames.copy()
    zoomed[..., :2] = 0.5 + (frames[..., :2] - 0.5) * 0.5  # the signer twice as far from the camera
    np.testing.assert_allclose(run(zoomed, cfg)[0], features, atol=1e-4)


def test_distances_are_the_wrist_to_fingertip_lengths_in_the_unit():
    """The wrist-to-fingertip block holds |tip - wrist| / unit for each of the 5 fingertips of the kept hand."""
    frames = body(4)
    cfg = PreprocessConfig(max_len=8, distances=True, dominant_hand=True, shoulder_unit=True)
    frames[:, POSE + 11, :2], frames[:, POSE + 12, :2] = [0.6, 0.6], [0.4, 0.6]  # unit = 0.2
    wrist = L.OFFSET["right_hand"]
    frames[:, wrist, :2] = [0.5, 0.5]
    for k, tip in enumerate(L.HAND_FINGERTIPS):
        frames[:, wrist + tip, :2] = [0.5, 0.5 - 0.02 * (k + 1)]
    features, mask = run(frames, cfg)
    tips = features[mask == 1, column(cfg, "distances") + 30: column(cfg, "distances") + 35]
    np.testing.assert_allclose(tips, np.tile([0.1, 0.2, 0.3, 0.4, 0.5], (4, 1)), atol=1e-4)


def test_angles_are_cosines_of_finger_bends():
    """A straight finger joint reads -1 (the two bones point apart); a right-angle bend reads 0."""
    frames = body(3)
    hand = L.OFFSET["right_hand"]
    frames[:, hand + 5, :2], frames[:, hand + 6, :2], frames[:, hand + 7, :2] = [0.5, 0.5], [0.5, 0.4], [0.5, 0.3]
    frames[:, hand + 8, :2] = [0.6, 0.3]  # index fingertip bent sideways at the last joint
    cfg = PreprocessConfig(max_len=4, angles=True, dominant_hand=True)
    features, mask = run(frames, cfg)
    index = features[mask == 1, column(cfg, "angles") + 3: column(cfg, "angles") + 6]  # joints 5, 6, 7
    np.testing.assert_allclose(index[:, 1], -1.0, atol=1e-5)
    np.testing.assert_allclose(index[:, 2], 0.0, atol=1e-5)


def test_motion_is_velocity_then_acceleration():
    """A point moving at constant speed has constant velocity (0 on the first frame) and no acceleration."""
    frames = body(6)
    cfg = PreprocessConfig(max_len=8, motion=True)
    features, mask = run(frames, cfg)
    d = column(cfg, "velocity")
    coords, velocity, acceleration = features[:6, :d], features[:6, d: 2 * d], features[:6, 2 * d:]
    np.testing.assert_allclose(velocity[1:], coords[1:] - coords[:-1], atol=1e-6)
    assert np.all(velocity[0] == 0)
    hand = slice(21 * 2, 42 * 2)  # the right hand moves linearly in body()
    np.testing.assert_allclose(acceleration[2:, hand], 0.0, atol=1e-5)


def test_trim_idle_cuts_still_or_handless_frames_at_both_ends_only():
    """3 frames without hands, then 6 moving, then 4 with the hand frozen: only the 6 moving ones stay."""
    moving = body(6)
    start = body(3, seed=1)
    start[:, list(L.RIGHT_HAND)] = np.nan
    end = np.repeat(moving[-1:], 4, axis=0)
    frames = np.concatenate([start, moving, end])
    _, mask = run(frames, PreprocessConfig(max_len=32, trim_idle=True, drop_frames="none"))
    assert mask.sum() == 6
    _, mask = run(frames, PreprocessConfig(max_len=32, drop_frames="none"))
    assert mask.sum() == 13, "without the option every frame is kept"
    still = np.repeat(moving[:1], 5, axis=0)
    assert run(still, PreprocessConfig(max_len=8, trim_idle=True))[1].sum() == 5, "all idle: nothing is cut"


def test_keras_layer_carries_every_option():
    """The Preprocess layer rebuilt from its config computes the same features with every option on."""
    layer = Preprocess(**dataclasses.asdict(ALL))
    clone = Preprocess.from_config(layer.get_config())
    assert clone.cfg == ALL
    frames = body(9)
    np.testing.assert_array_equal(layer(frames)[0].numpy(), clone(frames)[0].numpy())


def test_every_option_converts_to_builtin_tflite_and_matches(real_samples):
    """With all options on, the graph converts with builtin ops only, runs on TFLite 2.9.1's op versions,
    and matches the eager features on every real sample within 1e-4."""
    from kit.contract import tflite
    from kit.contract.opcheck import runtime_problems

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, L.N_LANDMARKS, 3], tf.float32, name="inputs")])
        def serve(self, inputs):
            features, mask = preprocess(inputs, ALL)
            return {"features": features, "mask": mask}

    module = Module()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    assert runtime_problems(model) == []
    lite = tflite.interpreter(model).get_signature_runner()
    for path in sorted(real_samples.glob("train_landmark_files/*/*.parquet")):
        frames = load_scorer_frames(path)
        eager, mask = run(frames, ALL)
        out = lite(inputs=frames)
        assert np.abs(out["features"] - eager).max() <= 1e-4, path.name
        assert np.array_equal(out["mask"], mask), path.name
