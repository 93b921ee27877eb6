"""kit synth --like-competition: the real data set's shape (signers, their counts, signs, lengths), resumable.

The full 94,477-sequence plan is checked as a plan (cheap); files are written for a 0.36 % fraction, the
smallest at which every signer still covers a different 12-sign stretch and so the set covers all 250 signs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.errors import KitError
from kit.data.landmarks import N_CLASSES, N_LANDMARKS
from kit.data.parquet import read_landmarks
from kit.data.rehearsal import (MANIFEST, check_disk, counts_from_csv, plan, real_counts, scaled_counts,
                                synthesize_like_competition)
from kit.data.synth import SLOWEST, fit_times

FRACTION = 0.0036
REAL_TOTAL = 94_477


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return plan(real_counts())


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rehearsal") / "data"
    result = CliRunner().invoke(app, ["synth", "--like-competition", "--fraction", str(FRACTION),
                                      "--data", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_shipped_counts_are_the_real_ones(real_samples):
    """The asset holds the real train.csv's 21 participants and their sequence counts, 94,477 in all."""
    counts = real_counts()
    assert counts == counts_from_csv(real_samples / "train_ids_folds5.csv")
    assert len(counts) == 21 and sum(counts.values()) == REAL_TOTAL


def test_full_plan_has_the_real_shape(full):
    """94,477 unique sequence ids; each real signer with their real count; every sign ~equally often."""
    assert len(full) == REAL_TOTAL and full["sequence_id"].is_unique
    assert full.groupby("participant_id").size().to_dict() == real_counts()
    per_sign = full.groupby("sign").size()
    assert len(per_sign) == N_CLASSES and per_sign.max() - per_sign.min() <= 21  # ~378 each
    per_signer_sign = full.groupby(["participant_id", "sign"]).size()
    assert len(per_signer_sign) == 21 * N_CLASSES  # every signer does every sign


def test_lengths_spread_like_the_competition(full, real_samples):
    """Median ~33 and mean ~38 frames, 1 to 500, most under 100, a long tail; the 10 real samples' lengths (3 to
    105) fall inside the model's 0.1..99.9 percentiles (3 and 311 frames; 105 is its 98th)."""
    frames = full["frames"].to_numpy()
    assert 31 <= np.median(frames) <= 35 and 36 <= frames.mean() <= 40
    assert frames.min() >= 1 and frames.max() <= 500 and (frames < 100).mean() > 0.95
    assert np.percentile(frames, 99.9) > 250 and (frames <= 6).mean() > 0.005
    real = [pq.read_metadata(p).num_rows // N_LANDMARKS
            for p in (real_samples / "train_landmark_files").glob("*/*.parquet")]
    low, high = np.percentile(frames, [0.1, 99.9])
    assert len(real) == 10 and all(low <= n <= high for n in real), (sorted(real), low, high)


def test_a_fraction_is_a_proportional_subset_of_the_full_set(full):
    """Every signer keeps round(F x their count) sequences, the first ones of the full plan, unchanged."""
    part = plan(real_counts(), 0.05)
    assert part.groupby("participant_id").size().to_dict() == scaled_counts(real_counts(), 0.05)
    merged = part.merge(full, on="sequence_id", suffixes=("", "_full"))
    assert len(merged) == len(part)
    for column in ("participant_id", "sign", "frames", "slot"):
        assert (merged[column] == merged[f"{column}_full"]).all(), column
    assert part.groupby("participant_id")["slot"].max().add(1).to_dict() == scaled_counts(real_counts(), 0.05)


def test_written_fraction_has_the_shape_and_the_planned_lengths(written):
    """train.csv: 21 signers in the real proportions, all 250 signs, and each file as long as planned."""
    train = pd.read_csv(written / "train.csv")
    expected = scaled_counts(real_counts(), FRACTION)
    assert train.groupby("participant_id").size().to_dict() == expected
    assert train["sign"].nunique() == N_CLASSES
    planned = plan(real_counts(), FRACTION).set_index("sequence_id")["frames"]
    lengths = {sid: len(read_landmarks(written / p)) for sid, p in zip(train["sequence_id"], train["path"])}
    assert lengths == planned.to_dict()
    assert not list(written.glob("train_landmark_files/*/.*"))  # no temporary files left


def test_kit_prepare_accepts_the_output_unchanged(written, tmp_path):
    """`kit prepare` caches every sequence of the written set without a complaint."""
    result = CliRunner().invoke(app, ["prepare", "--data", str(written), "--cache", str(tmp_path / "cache"),
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    n = len(pd.read_csv(written / "train.csv"))
    assert f"Cache {tmp_path / 'cache'}: {n:,} sequences" in result.stdout


def test_a_rerun_writes_only_what_is_missing(tmp_path):
    """Killed midway (files and train.csv gone, a half-written temp file left), a re-run writes just the missing
    files, byte for byte the same, removes the temp file and writes the same train.csv."""
    out, counts = tmp_path / "set", {11111: 3, 22222: 2}
    first = synthesize_like_competition(out, counts=counts, workers=1)
    assert first.written == 5
    files = sorted(out.glob("train_landmark_files/*/*.parquet"))
    before = {p: p.read_bytes() for p in files}
    train_csv = (out / "train.csv").read_bytes()
    for gone in files[:2] + [out / "train.csv"]:
        gone.unlink()
    (files[0].parent / ".123.456.tmp").write_bytes(b"half a file")
    again = synthesize_like_competition(out, counts=counts, workers=1)
    assert again.written == 2 and again.n_sequences == 5
    assert {p: p.read_bytes() for p in files} == before and (out / "train.csv").read_bytes() == train_csv
    assert not (files[0].parent / ".123.456.tmp").exists()


def test_refuses_a_foreign_folder_and_another_seed(tmp_path):
    """A non-empty folder without synth's manifest, or a set of another seed, is never written into."""
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(KitError, match="not empty"):
        synthesize_like_competition(tmp_path, counts={11111: 1}, workers=1)
    out = tmp_path / "set"
    synthesize_like_competition(out, counts={11111: 1}, workers=1)
    assert json.loads((out / MANIFEST).read_text())["seed"] == 0
    with pytest.raises(KitError, match="give the same --seed and --counts to resume it"):
        synthesize_like_competition(out, counts={11111: 1}, seed=1, workers=1)


def test_too_small_a_disk_is_one_error_naming_what_is_needed():
    """The disk check names the folder, the GB needed and free, and the ways out."""
    check_disk(Path("big"), needed=10, free=10)
    with pytest.raises(KitError) as err:
        check_disk(Path("big"), needed=42_300_000_000, free=30_000_000_000)
    assert str(err.value) == ("big: needs ~42.3 GB free for the landmark files, the disk has 30.0 GB: free space, "
                              "choose another --out, or write less with --fraction")


def test_the_full_set_on_a_small_disk_fails_before_writing_anything(tmp_path, monkeypatch):
    """`kit synth --like-competition` on a disk with 10 GB free: one `Error:` line, and no folder made."""
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=10 * 10**9))
    result = CliRunner().invoke(app, ["synth", "--like-competition", "--data", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'x'}: needs ~45.8 GB free for the landmark files, the "
                                    "disk has 10.0 GB")
    assert not (tmp_path / "x").exists()


def test_counts_from_a_csv_without_participant_id(tmp_path):
    """--counts needs a participant_id column; anything else is a one-line error naming the file."""
    bad = tmp_path / "ids.csv"
    bad.write_text("sequence_id\n1\n")
    result = CliRunner().invoke(app, ["synth", "--like-competition", "--counts", str(bad),
                                      "--data", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {bad}: no participant_id column")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("span", [11, 30, 60, 499])
def test_fit_times_keeps_the_keys_in_order_inside_the_recording(span):
    """Sped up or slowed down (at most SLOWEST) with idle frames around it, a sign's keys stay in order and
    inside the recording's frames."""
    times = np.cumsum([2.0, 4.0, 8.0, 9.0, 4.0])
    for lead in (0.0, 0.5, 1.0):
        fitted = fit_times(times, times[-1] + 3.0, span, lead)
        assert (np.diff(fitted) > 0).all() and fitted[0] >= 0 and fitted[-1] <= span
        assert np.diff(fitted).max() <= SLOWEST * np.diff(times).max() + 1e-9
