"""Preprocessing is defined once: the same numbers eagerly, in tf.function, in tf.data and inside TFLite."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kit.data import landmarks as L
from kit.config import PreprocessConfig
from kit.contract.evaluate import load_scorer_frames
from kit.preprocessing.preprocess import Preprocess, n_features, preprocess

CFG = PreprocessConfig(max_len=32)


def real_sequences(samples):
    return {p.stem: load_scorer_frames(p) for p in sorted(samples.glob("train_landmark_files/*/*.parquet"))}


class PreprocessModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, L.N_LANDMARKS, 3], tf.float32, name="inputs")])
    def serve(self, inputs):
        features, mask = preprocess(inputs, CFG)
        return {"features": features, "mask": mask}


@pytest.fixture(scope="module")
def tflite_preprocess():
    from kit.contract import tflite

    module = PreprocessModule()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interp = tflite.interpreter(converter.convert())
    return interp.get_signature_runner()


def test_same_output_eager_graph_and_tflite(real_samples, tflite_preprocess):
    """On every real sample, eager, tf.function and the TFLite interpreter agree within 1e-5."""
    graph = tf.function(lambda x: preprocess(x, CFG))
    for name, frames in real_sequences(real_samples).items():
        eager_f, eager_m = (t.numpy() for t in preprocess(frames, CFG))
        graph_f, graph_m = (t.numpy() for t in graph(tf.constant(frames)))
        lite = tflite_preprocess(inputs=frames)
        assert np.abs(eager_f - graph_f).max() <= 1e-5, name
        assert np.abs(eager_f - lite["features"]).max() <= 1e-5, name
        assert np.array_equal(eager_m, lite["mask"]) and np.array_equal(eager_m, graph_m), name


def test_output_shape_and_no_nan(real_samples):
    """Features are [max_len, F] with no NaN; the mask counts the kept frames (at least one)."""
    for name, frames in real_sequences(real_samples).items():
        features, mask = (t.numpy() for t in preprocess(frames, CFG))
        assert features.shape == (CFG.max_len, n_features(CFG)), name
        assert not np.isnan(features).any(), name
        assert 1 <= mask.sum() <= min(len(frames), CFG.max_len), name
        assert np.all(features[mask == 0] == 0), name


def test_frames_without_a_face_centre_on_the_pose_s_nose(real_samples):
    """Real files have frames without a face: there the pose's nose (moved by its mean offset to the face's nose)
    is the head. A real sequence that loses its face in 6 of 30 frames keeps its hands where they were; one without
    a face in any frame stays finite, its hands where they were up to the unit of length (lips and eyes no longer
    count in the spread: a scale, a small shift). Train (the resident layout) and serve (543 points) agree."""
    from kit.training.pipeline import RESIDENT

    frames = load_scorer_frames(real_samples / "train_landmark_files" / "22343" / "239181.parquet")
    hands = slice(0, 2 * 2 * 21)  # x, y of both hands come first
    with_face, mask = (t.numpy()[..., hands] for t in preprocess(frames, CFG))
    some = frames.copy()
    some[10:16, list(L.FACE)] = np.nan
    partly = preprocess(some, CFG)[0].numpy()[..., hands]
    assert np.abs(partly - with_face).max() < 0.1  # the spread changes a little: 6 frames lack lips and eyes
    none = frames.copy()
    none[:, list(L.FACE)] = np.nan
    without = preprocess(none, CFG)[0].numpy()
    assert np.isfinite(without).all()
    a, b = without[mask == 1, hands].ravel(), with_face[mask == 1].ravel()
    scale = a @ b / (b @ b)
    assert np.abs(a - scale * b).max() < 0.2 * np.abs(a).max()
    resident = preprocess(none[:, RESIDENT], CFG, RESIDENT)[0].numpy()
    np.testing.assert_allclose(resident, without, atol=1e-6)


def test_frames_without_a_hand_are_dropped():
    """Frames where both hands are NaN are dropped; a sequence with no hand at all keeps every frame."""
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, (10, L.N_LANDMARKS, 3)).astype(np.float32)
    frames[:, list(L.LEFT_HAND)] = np.nan
    frames[[0, 1, 9], 522:543] = np.nan  # right hand missing in 3 frames
    assert preprocess(frames, CFG)[1].numpy().sum() == 7
    frames[:, 522:543] = np.nan
    assert preprocess(frames, CFG)[1].numpy().sum() == 10


def test_long_sequences_are_subsampled_over_their_whole_length():
    """A sequence longer than max_len keeps max_len frames spread from the first to near the last."""
    frames = np.zeros((320, L.N_LANDMARKS, 3), np.float32)
    frames[:, :, 0] = np.linspace(0, 1, 320)[:, None]  # x grows with time
    features, mask = (t.numpy() for t in preprocess(frames, PreprocessConfig(max_len=32, drop_frames="none")))
    assert mask.sum() == 32
    xs = features[:, 0]
    assert np.all(np.diff(xs) > 0), "frames keep their order"
    assert xs[-1] - xs[0] > 0.9 * (xs.max() - xs.min())


def test_head_is_moved_to_the_origin():
    """Shifting the whole body in the image does not change the features (the head is the origin)."""
    rng = np.random.default_rng(1)
    frames = rng.uniform(0.3, 0.6, (12, L.N_LANDMARKS, 3)).astype(np.float32)
    moved = frames + np.array([0.2, -0.1, 0.0], np.float32)
    a, _ = preprocess(frames, CFG)
    b, _ = preprocess(moved, CFG)
    assert np.abs(a.numpy() - b.numpy()).max() < 1e-4


def test_keras_layer_round_trips_its_config():
    """The Preprocess layer stores every argument: from_config(get_config()) computes the same thing."""
    layer = Preprocess(max_len=16, use_z=True, drop_frames="none")
    clone = Preprocess.from_config(layer.get_config())
    frames = np.random.default_rng(2).uniform(0, 1, (5, L.N_LANDMARKS, 3)).astype(np.float32)
    assert np.array_equal(layer(frames)[0].numpy(), clone(frames)[0].numpy())
    assert clone(frames)[0].shape == (16, len(L.SELECTED) * 3)


@pytest.mark.parametrize("options", [{}, dict(dominant_hand=True, shoulder_unit=True, distances=True, angles=True,
                                              motion=True, trim_idle=True), dict(use_z=True, drop_frames="none")])
def test_unpadded_output_is_the_real_rows_of_the_padded_one(real_samples, options):
    """pad=False (the exported graph) gives exactly the frames the padded output marks real, for every feature
    option, on the real samples and on sequences shorter than, equal to and longer than max_len."""
    from kit.contract.gates import plausible_frames

    cfg = PreprocessConfig(max_len=16, **options)
    rng = np.random.default_rng(0)
    sequences = list(real_sequences(real_samples).values()) + [plausible_frames(rng, n) for n in (1, 16, 17, 90)]
    for frames in sequences:
        padded, mask = (t.numpy() for t in preprocess(frames, cfg))
        real, ones = (t.numpy() for t in preprocess(frames, cfg, pad=False))
        assert real.shape == (mask.sum(), n_features(cfg)) and np.all(ones == 1)
        np.testing.assert_array_equal(real, padded[: len(real)])
