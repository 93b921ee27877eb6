"""`kit show`: sequences animate into valid GIFs, drawn the right way up, raw or as the model sees them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from kit.data import landmarks as L
from kit.cli import app
from kit.config import PreprocessConfig
from kit.seeing.show import COLORS, Renderer, model_points, raw_view, show

runner = CliRunner()
SMALL_DPI = 30  # 120-px panels: enough to find a point, fast to draw


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])


def wrist_frame() -> np.ndarray:
    """One frame: no left hand, a right hand of just its wrist at (0.25, 0.25), face and pose far off at the bottom right."""
    rng = np.random.default_rng(0)
    frame = np.full((1, L.N_LANDMARKS, 3), np.nan, np.float32)
    body = list(L.FACE) + list(L.POSE)
    frame[0, body] = rng.uniform(0.8, 0.9, size=(len(body), 3))
    frame[0, L.OFFSET["right_hand"] + L.HAND_WRIST] = (0.25, 0.25, 0.0)
    return frame


def test_right_wrist_is_drawn_where_it_is_with_y_pointing_down():
    """A wrist at image (0.25, 0.25) appears in the upper left of the picture (MediaPipe y grows downward),
    in the right hand's colour, at the pixel the renderer reports, and nothing of it at the mirrored row."""
    renderer = Renderer([raw_view(wrist_frame(), "wrist")], dpi=60)
    image = np.asarray(renderer.image(0)).astype(int)
    col, row = renderer.pixel(0, 0.25, 0.25)
    height, width = image.shape[:2]
    assert row < height / 2 and col < width / 2  # the upper left: y is not flipped the wrong way
    red = _rgb(COLORS["right"])

    def reddest(r: int, c: int, radius: int = 2) -> int:
        patch = image[max(r - radius, 0):r + radius + 1, max(c - radius, 0):c + radius + 1]
        return int(np.abs(patch - red).sum(axis=-1).min())

    assert reddest(row, col) < 60, "the right wrist's colour is not at its expected pixel"
    assert reddest(height - row, col) > 150, "the right wrist was drawn at the mirrored (y-up) position"
    # and the right-hand colour appears nowhere else: the whole hand is one point
    near = np.abs(image - red).sum(axis=-1) < 60
    rows, cols = np.nonzero(near)
    assert np.abs(rows - row).max() <= 4 and np.abs(cols - col).max() <= 4


def test_real_sample_animates_into_a_gif_of_every_frame(real_samples, tmp_path):
    """A real competition file becomes a GIF with one frame per landmark frame, through the real CLI."""
    path = real_samples / "train_landmark_files" / "22343" / "239181.parquet"
    out = tmp_path / "real.gif"
    result = runner.invoke(app, ["show", str(path), "--out", str(out), "--dpi", str(SMALL_DPI), "--fps", "10"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 30
        gif.seek(gif.n_frames - 1)
        gif.load()


@pytest.mark.parametrize("sample", ["30680/2113802134", "27610/4023682555", "49445/1603631219"])
def test_real_files_with_frames_without_a_face_animate(real_samples, tmp_path, sample):
    """The real files whose face is missing in some frames (1, 5 and 2 of them) show like any other: one GIF frame
    per landmark frame, the faceless ones drawn without a face."""
    out = tmp_path / "faceless.gif"
    result = runner.invoke(app, ["show", str(real_samples / "train_landmark_files" / f"{sample}.parquet"), "--out",
                                 str(out), "--dpi", str(SMALL_DPI)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == {"30680/2113802134": 6, "27610/4023682555": 7, "49445/1603631219": 6}[sample]


@pytest.fixture(scope="module")
def synth_data(synthetic):
    return synthetic(2, 2, 1, seed=1) / "data"


def synth_files(data):
    return sorted((data / "train_landmark_files").glob("*/*.parquet"))


def test_two_sequences_side_by_side_last_as_long_as_the_longer(synth_data, tmp_path, monkeypatch):
    """Two files make one GIF twice as wide, as many frames as the longer; the default name is <stem>_<stem>.gif here."""
    from kit.data.parquet import read_landmarks

    a, b = synth_files(synth_data)[:2]
    monkeypatch.chdir(tmp_path)
    result = show([a, b], dpi=SMALL_DPI)
    assert result.out == tmp_path / f"{a.stem}_{b.stem}.gif"
    one = show([a], out=tmp_path / "one.gif", dpi=SMALL_DPI)
    with Image.open(result.out) as pair, Image.open(one.out) as single:
        assert pair.n_frames == max(len(read_landmarks(a)), len(read_landmarks(b)))
        assert pair.size[0] == 2 * single.size[0]
    sign = pd.read_csv(synth_data / "train.csv").set_index("sequence_id").loc[int(a.stem), "sign"]
    assert result.titles[0].endswith(f"({sign})")  # found in the train.csv beside the files


def test_model_view_draws_what_preprocess_returns(synth_data, tmp_path):
    """--model-view has one GIF frame per real (unpadded) model step, and the points are preprocess's output."""
    import tensorflow as tf

    from kit.data.parquet import read_landmarks
    from kit.preprocessing.preprocess import preprocess

    path = synth_files(synth_data)[0]
    frames = read_landmarks(path)
    cfg = PreprocessConfig(max_len=16)
    points = model_points(frames, cfg)
    features, mask = (np.array(t) for t in preprocess(tf.constant(frames), cfg))
    assert len(points) == int(mask.sum())
    kept = list(L.SELECTED)
    expected = features[: len(points), : len(kept) * 2].reshape(len(points), len(kept), 2)
    for hand in (slice(0, 21), slice(21, 42)):  # a hand the model sees as all zeros (missing) is not drawn
        missing = np.all(expected[:, hand] == 0, axis=(1, 2))
        expected[missing, hand] = np.nan
    assert np.isnan(expected).any() and np.isfinite(expected).any()
    np.testing.assert_allclose(points[:, kept], expected)  # NaN where NaN, preprocess's numbers elsewhere
    assert np.isnan(points[:, sorted(set(range(L.N_LANDMARKS)) - set(kept))]).all()

    run = tmp_path / "run"
    run.mkdir()
    from kit.config import Config

    Config(preprocess=cfg).save(run / "config.json")
    out = tmp_path / "model.gif"
    result = runner.invoke(app, ["show", str(path), "--model-view", "--run", str(run), "--out", str(out),
                                 "--dpi", str(SMALL_DPI)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == len(points)


def test_cached_sequence_shows_and_bad_requests_fail_in_one_line(synth_data, tmp_path):
    """--cache DIR --sequence-id ID draws a cached sequence; unknown ids and missing arguments are one-line
    errors naming the fix."""
    from kit.data.cache import open_cache
    from kit.data.prepare import build_cache

    build_cache(synth_data, tmp_path / "cache", workers=1)
    cache = open_cache(tmp_path / "cache")
    sid = int(cache.sequence_ids[0])
    out = tmp_path / "cached.gif"
    result = runner.invoke(app, ["show", "--cache", str(tmp_path / "cache"), "--sequence-id", str(sid),
                                 "--out", str(out), "--dpi", str(SMALL_DPI)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == int(cache.lengths[0])

    path = str(synth_files(synth_data)[0])
    cases = [(["show"], "draws one"), (["show", "--cache", str(tmp_path / "cache"), "--sequence-id", "1"], "no sequence 1"),
             (["show", "--sequence-id", str(sid)], "needs --cache"),
             (["show", path, path, path], "two side by side"),
             (["show", path, "--out", str(tmp_path / "x.png")], ".gif or .mp4")]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_mp4_is_written_with_ffmpeg_and_refused_in_one_line_without(synth_data, tmp_path, monkeypatch):
    """--out FILE.mp4 writes an MP4 (ISO media: an `ftyp` box first) with the ffmpeg of kit[video]; where no ffmpeg
    can be found it fails before drawing, in one line that names the fix."""
    import kit.seeing.show

    path = str(synth_files(synth_data)[0])
    out = tmp_path / "sign.mp4"
    result = runner.invoke(app, ["show", path, "--out", str(out), "--dpi", str(SMALL_DPI)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000 and out.read_bytes()[4:8] == b"ftyp"

    monkeypatch.setattr(kit.seeing.show, "find_ffmpeg", lambda: False)
    result = runner.invoke(app, ["show", path, "--out", str(tmp_path / "x.mp4")])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert "kit[video]" in result.output and "--out x.gif" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "x.mp4").exists()
