"""`kit show FILE --augment N`: N draws of the training augmentations beside the original in one picture, and a
table of what each augmentation drew, from the pipeline's own code."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from kit.cli import app
from kit.config import Config, apply_overrides
from kit.seeing.augmented import NAMES, draw, summary

runner = CliRunner()
FIRST = ["train.resample_prob=0.8", "train.random_crop=true", "train.affine_prob=0.75",
         "train.temporal_mask_prob=0.5", "train.spatial_mask_prob=0.5", "preprocess.max_len=20"]


@pytest.fixture(scope="module")
def sample(real_samples):
    return real_samples / "train_landmark_files" / "22343" / "239181.parquet"  # 30 frames


def test_augment_draws_a_grid_and_names_every_augmentation(real_samples, tmp_path):
    short = real_samples / "train_landmark_files" / "27610" / "4023682555.parquet"  # 7 frames: a quick GIF
    out = tmp_path / "aug.gif"
    sets = [arg for s in FIRST + ["train.rotate_deg=10", "preprocess.max_len=4"] for arg in ("--set", s)]
    result = runner.invoke(app, ["show", str(short), "--augment", "4", "--out", str(out), "--dpi", "30", *sets])
    assert result.exit_code == 0, result.output
    for name in NAMES.values():
        assert any(line.startswith(name) for line in result.output.splitlines()), name
    assert "the original and 4 draws" in result.output
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.size == (3 * 120, 261)  # 5 panels: 3 columns and 2 rows of 4 x 4.35 inches at 30 dpi
        assert gif.n_frames == 7  # the longest panel: the original (the draws are cropped to 4)


def test_the_table_counts_what_the_draws_drew(sample):
    from kit.data.parquet import read_landmarks

    cfg = apply_overrides(Config(), FIRST)
    original, draws, params = draw(read_landmarks(sample), cfg, 30)
    assert len(draws) == 30 and len(original) == 30
    rows = {row.name: row for row in summary(params, cfg, 30, len(original))}
    for name in ("resample", "mirror", "crop", "affine", "temporal_mask", "spatial_mask"):
        assert rows[NAMES[name]].fired == f"{int(params[name]['fired'].sum())}/30"
    assert rows["rotate/zoom/noise"].setting == "off"
    np.testing.assert_array_equal([len(d) for d in draws], params["crop"]["length"])
    rates = params["resample"]["rate"][params["resample"]["fired"]]
    assert f"rate {rates.min():.2f} to {rates.max():.2f}" in rows["resample"].drawn
    masked = params["temporal_mask"]["fired"]
    for d, p, m in zip(draws, params["temporal_mask"]["size"], masked):
        assert np.isnan(d).all(axis=(1, 2)).sum() >= (p if m else 0)


def test_default_config_shows_the_augmentations_off(sample):
    from kit.data.parquet import read_landmarks

    cfg = Config()
    _, _, params = draw(read_landmarks(sample), cfg, 3)
    rows = summary(params, cfg, 3, 30)
    assert [r.name for r in rows if r.setting != "off"] == ["mirror"]


@pytest.mark.parametrize("args, error", [
    (["--augment", "0"], "--augment 0: give the number of draws, 1 or more"),
    (["--augment", "2", "--recipe", "nope"], "unknown recipe 'nope'"),
    (["--recipe", "conv1st"], "--config, --recipe and --set choose the augmentations of --augment N"),
    (["--augment", "2", "--model-view"], "--augment draws one landmark file"),
])
def test_bad_requests_fail_in_one_line(sample, tmp_path, args, error):
    result = runner.invoke(app, ["show", str(sample), "--out", str(tmp_path / "x.gif"), *args])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {result.output.strip()[7:]}"]
    assert error in result.output


def test_a_missing_file_fails_in_one_line(tmp_path):
    result = runner.invoke(app, ["show", str(tmp_path / "none.parquet"), "--augment", "2"])
    assert result.exit_code == 1 and "no such file" in result.output and len(result.output.strip().splitlines()) == 1
