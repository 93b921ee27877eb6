"""`kit stats`: counts that match train.csv and the landmark files, the same from parquet and from the cache,
printed as tables and drawn as PNGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from kit.cli import app
from kit.data.parquet import read_landmarks
from kit.seeing.stats import PLOTS, data_stats, hand_missing

runner = CliRunner()


@pytest.fixture(scope="module")
def data(synthetic):
    return synthetic(3, 3, 2, seed=2) / "data"


def test_cli_prints_tables_and_writes_pngs_that_decode(data, tmp_path):
    """`kit stats DATA --out DIR` prints the per-participant and per-sign tables and writes four valid PNGs."""
    out = tmp_path / "plots"
    result = runner.invoke(app, ["stats", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    train = pd.read_csv(data / "train.csv")
    assert "per participant" in result.output and "sequences per sign" in result.output
    for pid in train["participant_id"].unique():
        assert str(pid) in result.output
    assert f"{len(train)} sequences of 3 signs by 3 participants" in result.output
    for name in PLOTS:
        with Image.open(out / name) as png:
            assert png.format == "PNG" and png.size[0] > 100
            png.load()


def test_counts_lengths_and_missing_rates_match_the_files(data, tmp_path):
    """Per sign and participant counts equal train.csv's; lengths and missing-hand frames equal the files'."""
    stats = data_stats(data, out_dir=tmp_path / "a", limit=10)
    train = pd.read_csv(data / "train.csv").head(10)
    assert dict(stats.signs) == train["sign"].value_counts().to_dict()
    assert {p: s.sequences for p, s in stats.participants.items()} == train["participant_id"].value_counts().to_dict()
    for pid, rows in train.groupby("participant_id"):
        frames = [read_landmarks(data / path) for path in rows["path"]]
        assert stats.lengths[pid] == [len(f) for f in frames]
        p = stats.participants[pid]
        assert p.frames == sum(len(f) for f in frames)
        assert (p.left_missing, p.right_missing) == tuple(np.sum([hand_missing(f) for f in frames], axis=0))
    assert 0 < sum(p.left_missing + p.right_missing for p in stats.participants.values())


def test_cache_gives_the_same_numbers_and_bad_files_are_named(data, tmp_path):
    """--cache reads the same lengths and missing rates as parquet; an unreadable file is listed, the rest counted,
    and the command exits 1 naming it."""
    from kit.data.prepare import build_cache

    build_cache(data, tmp_path / "cache", workers=1)
    from_parquet = data_stats(data, out_dir=tmp_path / "p")
    from_cache = data_stats(data, out_dir=tmp_path / "c", cache_dir=tmp_path / "cache")
    assert from_cache.lengths == from_parquet.lengths and from_cache.participants == from_parquet.participants
    assert f"from kit prepare's cache in {tmp_path / 'cache'})" in str(from_cache)

    broken = tmp_path / "broken"
    runner.invoke(app, ["synth", "--data", str(broken), "--signs", "2", "--signers", "1", "--per-sign", "1"])
    first = pd.read_csv(broken / "train.csv")["path"][0]
    (broken / first).write_bytes(b"")
    stats = data_stats(broken, out_dir=tmp_path / "b")
    assert len(stats.bad) == 1 and first in stats.bad[0][0] and "empty file" in str(stats)
    assert sum(len(v) for v in stats.lengths.values()) == 1
    result = runner.invoke(app, ["stats", "--data", str(broken), "--out", str(tmp_path / "b2")])
    assert result.exit_code == 1, "the counts are printed, but a bad file still fails the command"
    assert "Error: " in result.output and first in result.output and "empty file" in result.output
    assert (tmp_path / "b2" / "signs.png").is_file()


def test_real_samples_count_the_frames_without_a_face(real_samples, tmp_path):
    """The 10 real samples: every file is read (none is "damaged"), and 8 of their 392 frames, in 3 files, have
    no face: counted per participant and in the summary."""
    import shutil

    data = tmp_path / "real"
    shutil.copytree(real_samples / "train_landmark_files", data / "train_landmark_files")
    shutil.copy(real_samples / "sign_to_prediction_index_map.json", data)
    rows = pd.read_csv(real_samples / "samples.csv").fillna({"sign": "TV"})
    rows.to_csv(data / "train.csv", index=False)
    stats = data_stats(data, tmp_path / "plots")
    assert not stats.bad and sum(p.frames for p in stats.participants.values()) == 392
    assert {pid: p.face_missing for pid, p in stats.participants.items() if p.face_missing} == {
        27610: 5, 30680: 1, 49445: 2}
    assert "frames without a face: 8 of 392 (2.04%) in 3 sequences" in stats.summary()


def test_missing_train_csv_is_one_line_error(tmp_path):
    """A folder without train.csv fails with one `Error:` line naming it."""
    result = runner.invoke(app, ["stats", "--data", str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "train.csv" in result.output
