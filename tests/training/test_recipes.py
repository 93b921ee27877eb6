"""The published recipes are what their sources published: every setting sourced, the 1st place's model and
preprocessing held to its notebook, the 26th place's settings to its write-up, old runs read as they trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from kit import config as C
from kit.cli import app
from kit.contract.export import pick_models
from kit.data import landmarks as L
from kit.data.parquet import read_landmarks
from kit.preprocessing.preprocess import n_features, preprocess
from kit.recipes import RECIPES

runner = CliRunner()


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_setting_of_a_recipe_names_its_source_and_is_what_the_recipe_builds(name):
    """Rule: a recipe is a list of sourced settings; each is a key --set takes, says where it comes from, and is
    the value the recipe's config holds (nothing overrides it behind the list)."""
    r = RECIPES[name]
    flat = C.flatten(C.recipe(name).to_dict())
    keys = [s.key for s in r.settings]
    assert len(keys) == len(set(keys)), "a setting listed twice"
    for s in r.settings:
        assert s.source.strip(), f"{name}: {s.key} has no source"
        assert flat[s.key] == s.value, f"{name}: {s.key} is {flat[s.key]!r}, the recipe says {s.value!r}"


def test_conv1st_builds_the_notebooks_model_on_its_708_channels():
    """The 1st place's model summary prints 1,836,569 parameters; its Preprocess gives 6 x 118 = 708 channels."""
    from kit.training.train import build_model

    cfg = C.recipe("conv1st")
    assert n_features(cfg.preprocess) == 708
    assert build_model(cfg, precision="float32").count_params() == 1_836_569


def test_llama26_is_the_write_up():
    """The 26th place's write-up: no scaling, no label smoothing, up to 512 frames, dropout 0.1, Lion 1e-4 -> 1e-5,
    batch 128, EMA, mixup 0.5, 2D coordinates."""
    cfg = C.recipe("llama26")
    p, t, m = cfg.preprocess, cfg.train, cfg.model
    assert (p.scale, p.max_len, p.use_z) == ("none", 512, False)
    assert (t.label_smoothing, t.optimizer, t.learning_rate, t.min_learning_rate, t.batch_size) == \
        (0.0, "lion", 1e-4, 1e-5, 128)
    assert t.ema and t.mixup_alpha == 0.5 and m.overrides == {"dropout": 0.1, "head_dropout": 0.1}


def test_kit_config_shows_each_setting_with_its_source_and_the_model(tmp_path):
    """`kit config --recipe conv1st` prints the model's parameters and channels, each setting beside its source,
    and the departures; --json is the config file kit train --config reads."""
    result = runner.invoke(app, ["config", "--recipe", "conv1st"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "conv_transformer: 1,836,569 parameters, 708 input channels (max_len 384)" in out
    assert "train.optimizer            radam             cell 18: tfa.optimizers.RectifiedAdam" in out
    assert "where the kit departs from the source" in out and "kit train --full --from-cv RUN --seeds 4" in out
    shown = runner.invoke(app, ["config", "--json", "--recipe", "conv1st"]).output
    assert C.from_dict(json.loads(shown)) == C.recipe("conv1st")
    bad = runner.invoke(app, ["config", "--recipe", "conv1st", "--set", "preprocess.scale=minmax"])
    assert bad.exit_code == 1 and "use one of spread, axis_std, none" in bad.output


def notebook_preprocess(frames: np.ndarray, max_len: int = 384) -> np.ndarray:
    """The 1st place's cell 7-8 preprocessing, restated in numpy from its description: drop frames where every
    kept point is NaN; centre = nan-mean of point 17 (0.5 if none); per-axis nan-std about it over frames and
    points; first max_len frames; x, y and forward differences of 1 and 2 frames, zero past the end; NaN -> 0."""
    keep = ~np.isnan(frames[:, list(L.SELECTED_1ST)]).all(axis=(1, 2))
    x = frames[keep] if keep.any() else frames
    centre = np.nanmean(x[:, L.CENTER_1ST], axis=0)
    centre = np.where(np.isnan(centre), 0.5, centre)
    x = x[:, list(L.SELECTED_1ST)] - centre
    std = np.sqrt(np.nanmean(x ** 2, axis=(0, 1)))
    x = (x / std)[:max_len, :, :2]
    t = len(x)
    dx = np.zeros_like(x)
    dx[: t - 1] = x[1:] - x[:-1]
    dx2 = np.zeros_like(x)
    dx2[: max(t - 2, 0)] = x[2:] - x[:-2]
    out = np.concatenate([a.reshape(t, -1) for a in (x, dx, dx2)], axis=1)
    return np.nan_to_num(out, nan=0.0)


def test_conv1st_preprocessing_is_the_notebooks_on_the_real_samples(real_samples):
    """Rule: on every real file (faceless frames included), conv1st's preprocessing, padded or on real frames only,
    gives what the 1st place's Preprocess computes; and a long sequence keeps its first max_len frames."""
    cfg = C.recipe("conv1st").preprocess
    files = sorted(real_samples.glob("**/*.parquet"))
    assert len(files) == 10
    for path in files:
        frames = read_landmarks(path)
        expected = notebook_preprocess(frames)
        features, mask = (t.numpy() for t in preprocess(tf.constant(frames), cfg, pad=False))
        assert features.shape == expected.shape and mask.sum() == len(expected)
        np.testing.assert_allclose(features, expected, atol=2e-5, err_msg=str(path))
        padded, pad_mask = (t.numpy() for t in preprocess(tf.constant(frames), cfg))
        np.testing.assert_allclose(padded[: len(expected)], expected, atol=2e-5)
        assert not padded[len(expected):].any() and pad_mask.sum() == len(expected)
    long = np.concatenate([read_landmarks(files[0])] * 40)  # > 384 frames
    short = dict(cfg.__dict__, max_len=32)
    features, _ = preprocess(tf.constant(long), C.PreprocessConfig(**short), pad=False)
    # float32 sums over ~2,000 frames: agreement to 1e-4 of the value
    np.testing.assert_allclose(features.numpy(), notebook_preprocess(long, 32), rtol=1e-4, atol=2e-5)


def test_a_run_of_four_full_fits_exports_all_four(tmp_path):
    """`kit train --full --seeds 4` then `kit export RUN` is the 1st place's submission: every full fit, unless
    --top says fewer; folds keep the 3 best."""
    run = tmp_path / "run"
    for k in range(4):
        (run / f"full{k}").mkdir(parents=True)
        (run / f"full{k}" / "metrics.json").write_text("{}")
    assert pick_models(run, None) == [run / f"full{k}" for k in range(4)]
    assert pick_models(run, 2) == [run / "full0", run / "full1"]


def test_a_config_saved_before_the_recipes_changed_loads_as_it_trained(tmp_path):
    """A conv_transformer run saved before preprocess.points existed keeps its rotary, per-head attention; the old
    drop_handless key reads as drop_frames."""
    old = {"preprocess": {"max_len": 32, "drop_handless": True}, "model": {"name": "conv_transformer_tiny",
                                                                          "overrides": {}}, "train": {}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    cfg = C.load(path)
    assert cfg.preprocess.drop_frames == "handless"
    assert cfg.model.overrides == {"rope": True, "attention_scale": "head"}
    assert C.load(Path(path)) == cfg
    new = C.recipe("conv1st").to_dict()
    assert C.from_dict(new).model.overrides == {}


def test_llama26_clips_the_gradient_as_its_code_did():
    """train.clip_norm reaches the optimizer as a global norm (the 26th place's trainer: gradient_clip_val=1.)."""
    from kit.training.train import _optimizer

    assert _optimizer(C.recipe("llama26"), 10).global_clipnorm == 1.0
    assert _optimizer(C.recipe("conv1st"), 10).global_clipnorm is None
