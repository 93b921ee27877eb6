"""`kit prepare` and the training cache: what a user relies on when caching 94,477 landmark files.

Runs the real command (CliRunner on kit.cli.app, or a `python -m kit.cli` subprocess for the killed run)
on small data sets in the competition's layout: the real samples, or files written by tests/data/test_parquet.py's
helpers.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kit.data.cache import open_cache
from kit.cli import app
from kit.errors import KitError
from kit.data.parquet import read_landmarks
from kit.data.prepare import build_cache
from tests.environment import wait_for
from tests.data.test_parquet import random_frames, write_landmarks

ROOT = Path(__file__).resolve().parents[2]
SIGN_MAP = ROOT / "kit" / "assets" / "sign_to_prediction_index_map.json"
SIGNS = sorted(json.loads(SIGN_MAP.read_text()), key=json.loads(SIGN_MAP.read_text()).get)
HEADER = ["path", "participant_id", "sequence_id", "sign"]


# ---------------------------------------------------------------- data sets in the competition's layout

def write_train_csv(data: Path, rows: list[tuple], append: bool = False) -> None:
    with open(data / "train.csv", "a" if append else "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if not append:
            writer.writerow(HEADER)
        writer.writerows(rows)


def make_files(data: Path, n_files: int, seed: int = 0, lengths=(5, 40), participants=(101, 102, 103),
               first_id: int = 1000, distinct: int | None = None) -> list[tuple]:
    """Write `n_files` valid landmark files under `data`; their train.csv rows (not yet written).

    With `distinct`, only that many are generated and the rest are copies of them (writing parquet costs
    several times more than reading it: copies make large data sets cheap).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_files):
        pid, sid = participants[i % len(participants)], first_id + i
        path = f"train_landmark_files/{pid}/{sid}.parquet"
        if distinct and i >= distinct:
            (data / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data / rows[i % distinct][0], data / path)
        else:
            frames = random_frames(rng, int(rng.integers(*lengths)))
            write_landmarks(data / path, frames, start_frame=int(rng.choice([0, 17, 103])))
        rows.append((path, pid, sid, SIGNS[sid % len(SIGNS)]))
    return rows


def make_data(data: Path, n_files: int, **kwargs) -> Path:
    """A competition folder: train.csv, the real sign map and `n_files` generated landmark files."""
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(SIGN_MAP, data / SIGN_MAP.name)
    write_train_csv(data, make_files(data, n_files, **kwargs))
    return data


@pytest.fixture
def real_data(tmp_path, real_samples) -> Path:
    """The 10 real samples as a competition folder (three with frames without a face); the 5 rows without a sign
    get signs from the map."""
    data = tmp_path / "real"
    shutil.copytree(real_samples / "train_landmark_files", data / "train_landmark_files")
    shutil.copy(real_samples / "sign_to_prediction_index_map.json", data)
    with open(real_samples / "samples.csv", newline="") as f:
        rows = [[r["path"], r["participant_id"], r["sequence_id"], r["sign"] or SIGNS[i]]
                for i, r in enumerate(csv.DictReader(f))]
    write_train_csv(data, rows)
    return data


def prepare(data: Path, cache: Path, *args: str):
    return CliRunner().invoke(app, ["prepare", "--data", str(data), "--cache", str(cache), *args])


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    return result.output.strip().splitlines()[-1]


def assert_same_cache(a, b) -> None:
    for name in ("sequence_ids", "participant_ids", "labels", "lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.signs == b.signs
    for i in range(len(a)):
        np.testing.assert_array_equal(a.frames(i), b.frames(i))


def committed_paths(cache: Path) -> set[str]:
    return {f["path"] for m in (cache / "shards").glob("*.json") for f in json.loads(m.read_text())["files"]}


# ---------------------------------------------------------------- the real samples

def test_real_samples_are_cached_with_ids_labels_and_frames(real_data, tmp_path):
    """kit prepare caches the 10 real files, frames without a face included (real data, not damage): ids and labels
    from train.csv and the map, frames as read (float16)."""
    result = prepare(real_data, tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "Cache " + str(tmp_path / "cache") + ": 10 sequences, 392 frames (1.3 MB of float16). " \
           "This run read 10 new or changed files and reused 0 unchanged ones" in result.output
    cache = open_cache(tmp_path / "cache")
    rows = list(csv.DictReader(open(real_data / "train.csv")))
    assert len(cache) == 10 and cache.signs == SIGNS
    assert cache.sequence_ids.dtype == np.int64 and cache.participant_ids.dtype == np.int64
    assert cache.labels.dtype == np.int32 and cache.lengths.dtype == np.int32
    assert cache.sequence_ids.tolist() == [int(r["sequence_id"]) for r in rows]
    assert cache.participant_ids.tolist() == [int(r["participant_id"]) for r in rows]
    assert [cache.signs[label] for label in cache.labels] == [r["sign"] for r in rows]
    assert cache.signs[cache.labels[0]] == "cloud" and cache.signs[cache.labels[1]] == "owie"
    for i, row in enumerate(rows):
        frames = cache.frames(i)
        assert frames.dtype == np.float32 and frames.shape == (cache.lengths[i], 543, 3)
        expected = read_landmarks(real_data / row["path"], dtype=np.float16).astype(np.float32)
        np.testing.assert_array_equal(frames, expected)  # NaN (missing hands) kept in place
    assert np.isnan(cache.frames(0)).any()


# ---------------------------------------------------------------- every bad file, with its exact error line

def _rewrite(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def _set_frames(path: Path, change) -> None:
    frames = read_landmarks(path)
    change(frames)
    write_landmarks(path, frames)


def _pose_before_left_hand(table: pa.Table) -> pa.Table:
    order = np.arange(table.num_rows)
    frame1 = 543 + np.r_[0:468, 489:522, 468:489, 522:543]  # frame 1 lists pose, then left_hand
    order[543:1086] = frame1
    return table.take(order)


def _damage_csv(data: Path, line: int, new: str) -> None:
    lines = (data / "train.csv").read_text().splitlines()
    lines[line - 1] = new
    (data / "train.csv").write_text("\n".join(lines) + "\n")


FILE_CASES = {  # how the second file (line 3 of train.csv, 10 frames) is damaged -> the problem reported
    "empty": (lambda p: p.write_bytes(b""), "empty file (0 bytes): download it again"),
    "no rows": (lambda p: _rewrite(p, lambda t: t.slice(0, 0)), "no rows (0 frames): download it again"),
    "rows not whole frames": (
        lambda p: _rewrite(p, lambda t: t.slice(0, t.num_rows - 1)),
        "5429 rows is not a whole number of frames of 543 landmarks: the file is cut short or not MediaPipe "
        "Holistic output; download it again"),
    "missing column": (
        lambda p: _rewrite(p, lambda t: t.drop_columns(["z"])),
        "missing column(s) z: a competition landmark file has the columns frame,row_id,type,landmark_index,x,y,z"),
    "wrong dtype": (
        lambda p: _rewrite(p, lambda t: t.set_column(4, "x", t.column("x").cast(pa.string()))),
        "column x is string, expected floating point (float64) as in the competition files"),
    "landmark order": (
        lambda p: _rewrite(p, _pose_before_left_hand),
        "row 1011 (frame 1) is pose 0 where left_hand 0 belongs: every frame must list face (468), "
        "left_hand (21), pose (33), right_hand (21) landmarks in index order"),
    "infinite coordinate": (
        lambda p: _set_frames(p, lambda f: f.__setitem__((3, 10, 0), -np.inf)),
        "coordinates beyond ±65504 or infinite in frame 3: landmarks are normalized image coordinates near "
        "0..1, so the file is damaged; download it again"),
    "huge coordinate": (
        lambda p: _set_frames(p, lambda f: f.__setitem__((2, 530, 1), 1e6)),
        "coordinates beyond ±65504 or infinite in frame 2: landmarks are normalized image coordinates near "
        "0..1, so the file is damaged; download it again"),
    "missing file": (lambda p: p.unlink(),
                     "missing (listed on line 3 of train.csv): download the data again or remove that line"),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_bad_landmark_file_stops_with_its_error_line(tmp_path, case):
    """Each kind of bad file stops kit prepare with exit 1 and `Error: <file>: <problem and fix>`."""
    data = make_data(tmp_path / "data", 3, lengths=(10, 11))
    damage, problem = FILE_CASES[case]
    bad = data / "train_landmark_files/102/1001.parquet"
    damage(bad)
    assert error_line(prepare(data, tmp_path / "cache", "--workers", "1")) == f"Error: {bad}: {problem}"


def test_truncated_file_says_so_and_quotes_pyarrow(tmp_path):
    """A file cut short (an interrupted download) is named as truncated; pyarrow's own words follow."""
    data = make_data(tmp_path / "data", 3, lengths=(10, 11))
    bad = data / "train_landmark_files/102/1001.parquet"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    line = error_line(prepare(data, tmp_path / "cache"))
    assert line.startswith(f"Error: {bad}: not a readable parquet file, probably truncated or corrupt: download "
                           "it again (pyarrow says: ") and line.endswith(")")


CSV_CASES = {  # how train.csv is damaged -> the problem reported for train.csv
    "sign outside the map": (
        lambda d: _damage_csv(d, 3, "train_landmark_files/102/1001.parquet,102,1001,not-a-sign"),
        "line 3: sign 'not-a-sign' is not in sign_to_prediction_index_map.json: correct the sign, or use the map "
        "that came with the data"),
    "empty sign": (
        lambda d: _damage_csv(d, 3, "train_landmark_files/102/1001.parquet,102,1001,"),
        "line 3: no sign for train_landmark_files/102/1001.parquet: every training row needs one of the 250 "
        "signs of sign_to_prediction_index_map.json"),
    "duplicate sequence_id": (
        lambda d: _damage_csv(d, 4, "train_landmark_files/103/1002.parquet,103,1000,TV"),
        "line 4: sequence_id 1000 repeats line 2: each sequence must be listed once; remove the duplicate line"),
    "wrong columns": (
        lambda d: _damage_csv(d, 1, "path,participant_id,sequence_id,label"),
        "columns are path,participant_id,sequence_id,label; expected path,participant_id,sequence_id,sign as in "
        "the competition's train.csv"),
    "missing": (lambda d: (d / "train.csv").unlink(),
                "not found: --data must be the competition folder, which holds train.csv and train_landmark_files/"),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_bad_train_csv_stops_with_its_error_line(tmp_path, case):
    """A train.csv that is missing, has other columns, an unknown or empty sign or a repeated id: exit 1, one line."""
    data = make_data(tmp_path / "data", 3)
    damage, problem = CSV_CASES[case]
    damage(data)
    assert error_line(prepare(data, tmp_path / "cache")) == f"Error: {data / 'train.csv'}: {problem}"


def test_skip_bad_lists_bad_files_and_caches_the_rest(tmp_path):
    """--skip-bad goes on past bad files, lists them in bad_files.csv (train.csv order) and says how many."""
    data = make_data(tmp_path / "data", 8)
    (data / "train_landmark_files/102/1001.parquet").write_bytes(b"")
    _set_frames(data / "train_landmark_files/101/1003.parquet", lambda f: f.__setitem__((0, 0), np.inf))
    (data / "train_landmark_files/103/1005.parquet").unlink()
    _damage_csv(data, 8, "train_landmark_files/101/1006.parquet,101,1006,no-such-sign")
    cache = tmp_path / "cache"
    result = prepare(data, cache, "--skip-bad", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"Skipped 4 bad files, listed in {cache / 'bad_files.csv'}." in result.output
    with open(cache / "bad_files.csv", newline="") as f:
        listed = list(csv.reader(f))
    assert listed == [
        ["path", "problem"],
        ["train_landmark_files/102/1001.parquet", "empty file (0 bytes): download it again"],
        ["train_landmark_files/101/1003.parquet",
         "coordinates beyond ±65504 or infinite in frame 0: landmarks are normalized image coordinates near 0..1, "
         "so the file is damaged; download it again"],
        ["train_landmark_files/103/1005.parquet",
         "missing (listed on line 7 of train.csv): download the data again or remove that line"],
        ["train_landmark_files/101/1006.parquet",
         "train.csv line 8: sign 'no-such-sign' is not in sign_to_prediction_index_map.json: correct the sign, or "
         "use the map that came with the data"],
    ]
    assert open_cache(cache).sequence_ids.tolist() == [1000, 1002, 1004, 1007]
    again = build_cache(data, cache, workers=1, skip_bad=True)  # bad files are checked again, good ones kept
    assert (again.read, again.reused, again.skipped, again.sequences) == (0, 4, 4, 4)


def test_a_stopped_run_keeps_what_it_cached(tmp_path):
    """A bad file stops the run, but every file cached before it, earlier runs' and this run's, stays cached."""
    data = make_data(tmp_path / "data", 5)
    cache = tmp_path / "cache"
    assert prepare(data, cache).exit_code == 0
    new = make_files(data, 3, seed=1, first_id=2000)
    write_train_csv(data, new, append=True)
    (data / new[1][0]).write_bytes(b"")  # the second new file is bad: the first is read before it
    assert error_line(prepare(data, cache, "--workers", "1")).endswith("empty file (0 bytes): download it again")
    with pytest.raises(KitError, match="incomplete"):
        open_cache(cache)  # never taken for whole
    report = build_cache(data, cache, workers=1, skip_bad=True)
    assert (report.read, report.reused, report.skipped) == (1, 6, 1)


# ---------------------------------------------------------------- incremental, resumable, subsets

def test_parallel_workers_build_the_same_cache_as_one(tmp_path):
    """Files in more shards than the 3 worker processes give the cache 1 worker gives, bad files alike."""
    data = make_data(tmp_path / "data", 70, lengths=(2, 6), distinct=10)  # 16 files a shard: 5 shards
    for bad in ("train_landmark_files/102/1004.parquet", "train_landmark_files/101/1066.parquet"):
        (data / bad).write_bytes(b"")  # in the first and in the last shard
    parallel = build_cache(data, tmp_path / "parallel", workers=3, skip_bad=True)
    single = build_cache(data, tmp_path / "single", workers=1, skip_bad=True)
    assert (parallel.read, parallel.skipped, parallel.sequences) == (68, 2, 68) == (single.read, single.skipped,
                                                                                     single.sequences)
    assert len(list((tmp_path / "parallel" / "shards").glob("*.json"))) == 5
    assert_same_cache(open_cache(tmp_path / "parallel"), open_cache(tmp_path / "single"))
    bad_files = [(tmp_path / name / "bad_files.csv").read_text() for name in ("parallel", "single")]
    assert bad_files[0] == bad_files[1] and bad_files[0].count("empty file") == 2


def test_a_bad_file_stops_parallel_workers_cleanly(tmp_path):
    """A bad file stops a run of several workers: shards already read stay committed, no temp file is left."""
    data = make_data(tmp_path / "data", 70, lengths=(2, 6), distinct=10)
    (data / "train_landmark_files/102/1004.parquet").write_bytes(b"")  # 5th file of the first shard
    cache = tmp_path / "cache"
    with pytest.raises(KitError, match="empty file"):
        build_cache(data, cache, workers=2)
    kept = committed_paths(cache)
    assert {f"train_landmark_files/{101 + i % 3}/{1000 + i}.parquet" for i in range(4)} <= kept
    assert not list(cache.rglob("*.tmp"))
    report = build_cache(data, cache, workers=2, skip_bad=True)
    assert (report.reused, report.read, report.skipped) == (len(kept), 69 - len(kept), 1)


def test_rerun_reads_only_new_and_changed_files(tmp_path):
    """A re-run reads only files added to train.csv or changed (size or mtime) since, and gives a clean build."""
    data = make_data(tmp_path / "data", 20)
    cache = tmp_path / "cache"
    first = build_cache(data, cache, workers=2)
    assert (first.read, first.reused, first.sequences) == (20, 0, 20)
    write_train_csv(data, make_files(data, 5, seed=2, first_id=3000), append=True)
    changed = data / "train_landmark_files/102/1004.parquet"
    write_landmarks(changed, random_frames(np.random.default_rng(3), 50))
    second = build_cache(data, cache, workers=2)
    assert (second.read, second.reused, second.sequences) == (6, 19, 25)
    third = build_cache(data, cache, workers=2)
    assert (third.read, third.reused) == (0, 25)
    build_cache(data, tmp_path / "clean", workers=1)
    assert_same_cache(open_cache(cache), open_cache(tmp_path / "clean"))


def test_shards_whose_files_all_changed_are_deleted(tmp_path):
    """Once every file of a shard has been re-read into a newer shard, the old shard's files are removed."""
    data = make_data(tmp_path / "data", 3)
    cache = tmp_path / "cache"
    build_cache(data, cache, workers=1)
    old = sorted(p.name for p in (cache / "shards").iterdir())
    assert old == ["00001-00000.bin", "00001-00000.json"]
    for path in (data / "train_landmark_files").glob("*/*.parquet"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert build_cache(data, cache, workers=1).read == 3
    assert sorted(p.name for p in (cache / "shards").iterdir()) == ["00002-00000.bin", "00002-00000.json"]


def test_killed_run_resumes_without_redoing_finished_shards(tmp_path):
    """A `kit prepare` killed midway leaves committed shards and no index; the re-run reads only the rest."""
    n_files = 800  # with 2 workers: 16 shards of 50 files, so the first commits long before the last
    data = make_data(tmp_path / "data", n_files, lengths=(30, 80), distinct=23)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "kit.cli", "prepare", "--data", str(data), "--cache", str(cache), "--workers", "2"]
    run = subprocess.Popen(command, cwd=ROOT, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: list((cache / "shards").glob("*.json")), "kit prepare to commit its first shard", proc=run,
             poll=0.005)
    os.killpg(run.pid, signal.SIGKILL)  # the whole group: the command and its worker processes
    run.wait()
    finished = committed_paths(cache)
    assert 0 < len(finished) < n_files, "the kill came too late to test resuming"
    with pytest.raises(KitError, match="incomplete"):
        open_cache(cache)
    report = build_cache(data, cache, workers=2)
    assert (report.reused, report.read) == (len(finished), n_files - len(finished))
    assert not list(cache.rglob("*.tmp"))
    build_cache(data, tmp_path / "clean", workers=1)
    assert_same_cache(open_cache(cache), open_cache(tmp_path / "clean"))


def test_participants_and_limit_select_rows_in_train_csv_order(tmp_path):
    """--participants keeps those signers' rows, --limit the first N of them, in train.csv order."""
    data = make_data(tmp_path / "data", 12, lengths=(3, 6))
    cache = tmp_path / "cache"
    result = prepare(data, cache, "--participants", "103,102", "--limit", "5")
    assert result.exit_code == 0, result.output
    cached = open_cache(cache)
    assert cached.sequence_ids.tolist() == [1001, 1002, 1004, 1005, 1007]
    assert cached.participant_ids.tolist() == [102, 103, 102, 103, 102]
    assert error_line(prepare(data, cache, "--participants", "102,999")) == (
        f"Error: {data / 'train.csv'}: no rows for participant(s) 999: pick from its 3 participants, "
        "e.g. 101, 102, 103")


def test_open_cache_says_how_to_build_a_missing_cache(tmp_path):
    """Opening a folder without a cache fails with the command that makes one."""
    with pytest.raises(KitError) as caught:
        open_cache(tmp_path / "nothing")
    assert str(caught.value) == (f"{tmp_path / 'nothing'}: no training cache here: run `kit prepare --data "
                                 f"<competition folder> --cache {tmp_path / 'nothing'}` first")
