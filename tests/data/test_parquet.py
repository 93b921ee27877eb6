"""kit.data.parquet.read_landmarks: the real competition files read exactly as the competition's own loader reads them.

Also home of the helpers that write valid landmark files in the competition's format, fast (test_prepare uses
them for data sets of hundreds of files).
"""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kit.errors import BadFile
from kit.data.landmarks import N_LANDMARKS, OFFSET, landmark_index_column, type_column
from kit.data.parquet import read_landmarks

HANDS = ("left_hand", "right_hand")


def random_frames(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Valid landmarks `[n_frames, 543, 3]` float32 as in the real files: pose always present, each hand NaN in
    some frames, and the face NaN (all 468 points) in a few."""
    frames = rng.uniform(0.0, 1.0, size=(n_frames, N_LANDMARKS, 3)).astype(np.float32)
    frames[..., 2] -= 0.5  # z is centred on zero in MediaPipe output
    for hand in HANDS:
        gone = rng.random(n_frames) < 0.5
        frames[gone, OFFSET[hand]:OFFSET[hand] + 21] = np.nan
    frames[rng.random(n_frames) < 0.05, :OFFSET["left_hand"]] = np.nan
    return frames


@lru_cache(maxsize=64)
def _id_columns(n_frames: int, start_frame: int) -> tuple[pa.Array, ...]:
    """frame, row_id, type, landmark_index for `n_frames` frames: the same for every file of that length."""
    frame = np.repeat(np.arange(start_frame, start_frame + n_frames, dtype=np.int16), N_LANDMARKS)
    suffix = pa.array([f"-{t}-{i}" for t, i in zip(type_column(), landmark_index_column())] * n_frames)
    row_id = pc.binary_join_element_wise(pc.cast(pa.array(frame), pa.string()), suffix, "")
    types = pa.array(type_column() * n_frames)
    index = pa.array(np.tile(np.asarray(landmark_index_column(), dtype=np.int16), n_frames))
    return pa.array(frame), row_id, types, index


def landmark_table(frames: np.ndarray, start_frame: int = 0) -> pa.Table:
    """The competition's table for `frames`: frame int16, row_id, type, landmark_index int16, x/y/z float64.

    Missing landmarks are nulls, as in the real files (pandas wrote NaN as null).
    """
    frame, row_id, types, index = _id_columns(len(frames), start_frame)
    flat = frames.reshape(-1, 3).astype(np.float64)
    xyz = {axis: pa.array(flat[:, j], from_pandas=True) for j, axis in enumerate("xyz")}
    return pa.table({"frame": frame, "row_id": row_id, "type": types, "landmark_index": index, **xyz})


def write_landmarks(path: Path, frames: np.ndarray, start_frame: int = 0) -> Path:
    """Write `frames` as a competition landmark file (snappy; ids dictionary-encoded as in theirs).

    row_id and x/y/z are written plain rather than dictionary-encoded: twice as fast to write, and the
    reader's handling of either encoding is tested on the real files.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(landmark_table(frames, start_frame), path, use_dictionary=["frame", "type", "landmark_index"])
    return path


def competition_loader(path) -> np.ndarray:
    """The loader from the competition's own starter code."""
    data = pd.read_parquet(path, columns=["x", "y", "z"])
    return data.values.reshape(len(data) // N_LANDMARKS, N_LANDMARKS, 3).astype(np.float32)


def real_files(samples: Path) -> list[Path]:
    return sorted((samples / "train_landmark_files").glob("*/*.parquet"))


def test_real_samples_read_as_the_competition_loader_reads_them(real_samples):
    """Every real sample gives the same float32 [frames, 543, 3] array as the competition's loader, NaN included."""
    files = real_files(real_samples)
    assert len(files) == 10
    for path in files:
        expected = competition_loader(path)
        got = read_landmarks(path)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)  # NaN positions must match too


# The frames without a face in the real samples (samples/asl-signs/README.md): 1, 2 and 5 frames in three files.
REAL_FACELESS = {"2113802134": [4], "4023682555": [1, 2, 3, 4, 5], "1603631219": [2, 3]}


def test_real_samples_keep_frame_counts_missing_hands_and_frames_without_a_face(real_samples):
    """Frame counts are the row count / 543 (3..105 in the samples). Pose is complete in every frame; a face or a
    hand is either whole or NaN in all its points, and three real files have frames without a face: those read as
    data, not damage, at the frames where the competition's loader finds them."""
    lengths = {}
    for path in real_files(real_samples):
        frames = read_landmarks(path)
        lengths[path.stem] = len(frames)
        assert not np.isnan(frames[:, OFFSET["pose"]:OFFSET["right_hand"]]).any()
        face = np.isnan(frames[:, :OFFSET["left_hand"]])
        assert (face.all(axis=(1, 2)) | ~face.any(axis=(1, 2))).all()
        assert np.flatnonzero(face.all(axis=(1, 2))).tolist() == REAL_FACELESS.get(path.stem, [])
    assert lengths["100015657"] == 105 and lengths["1006440534"] == 3 and lengths["239181"] == 30
    assert lengths["4023682555"] == 7 and lengths["2113802134"] == 6 and lengths["1603631219"] == 6


def test_float16_reading_rounds_each_value_to_nearest(real_samples):
    """dtype=float16 (the cache's) is the float64 value rounded once to the nearest float16, NaN kept."""
    for path in real_files(real_samples)[:3]:
        exact = pd.read_parquet(path, columns=["x", "y", "z"]).values.reshape(-1, N_LANDMARKS, 3)
        np.testing.assert_array_equal(read_landmarks(path, dtype=np.float16), exact.astype(np.float16))


def test_written_files_read_back_exactly(tmp_path):
    """A file written by the test helper reads back bit for bit (float32 values survive float64 storage)."""
    frames = random_frames(np.random.default_rng(0), 12)
    path = write_landmarks(tmp_path / "a.parquet", frames, start_frame=40)
    np.testing.assert_array_equal(read_landmarks(path), frames)
    np.testing.assert_array_equal(read_landmarks(path), competition_loader(path))


def test_other_valid_encodings_are_accepted(tmp_path):
    """Plain (not dictionary) strings, float32 coordinates, int32 ids and row groups that split frames still read."""
    frames = random_frames(np.random.default_rng(1), 7)
    table = landmark_table(frames)
    for name, cast in (("x", pa.float32()), ("y", pa.float32()), ("landmark_index", pa.int32()), ("frame", pa.int64())):
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(cast))
    path = tmp_path / "b.parquet"
    pq.write_table(table, path, use_dictionary=False, row_group_size=1000)  # 1000 rows: groups cut frames
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    np.testing.assert_array_equal(read_landmarks(path), frames)


def test_bad_file_keeps_path_and_problem(tmp_path):
    """BadFile names the file and the problem separately, for bad_files.csv, and joins them for the error line."""
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"")
    with pytest.raises(BadFile) as caught:
        read_landmarks(path)
    assert caught.value.path == str(path)
    assert caught.value.problem == "empty file (0 bytes): download it again"
    assert str(caught.value) == f"{path}: empty file (0 bytes): download it again"


@pytest.mark.parametrize("damage", ["face inf", "pose -inf", "hand inf", "hand 1e5"])
def test_float16_reading_finds_the_same_damage_as_float32(tmp_path, damage):
    """The float16 reader's one-pass check of the bits finds what the float32 checks find, with the same words."""
    frames = random_frames(np.random.default_rng(2), 6)
    frames[:, :OFFSET["left_hand"]] = 0.5  # a face in every frame, so that the damage is the only odd value
    frame, landmark = {"face inf": (2, 3), "pose -inf": (4, 500), "hand inf": (3, 530), "hand 1e5": (5, 470)}[damage]
    frames[:, OFFSET["left_hand"]:OFFSET["left_hand"] + 21] = 0.5  # present, so that the hand values stick
    frames[:, OFFSET["right_hand"]:OFFSET["right_hand"] + 21] = 0.5
    frames[frame, landmark, 1] = {"inf": np.inf, "-inf": -np.inf, "1e5": 1e5}[damage.split()[1]]
    path = write_landmarks(tmp_path / "damaged.parquet", frames)
    problems = []
    for dtype in (np.float16, np.float32):
        with pytest.raises(BadFile) as caught:
            read_landmarks(path, dtype=dtype)
        problems.append(caught.value.problem)
    assert problems[0] == problems[1]
    assert f"frame {frame}" in problems[0]


@pytest.mark.parametrize("missing", ["hands", "face", "pose", "every landmark"])
def test_missing_landmarks_are_data_not_damage(tmp_path, missing):
    """NaN is how the competition's files say "not found": hands out of view, frames without a face (real files
    have them), and, never seen in the real files but the same encoding, a frame without a pose or without anything.
    Each passes both readers; the float16 result is the float32 one rounded."""
    frames = random_frames(np.random.default_rng(3), 9)
    where = {"hands": slice(OFFSET["left_hand"], OFFSET["pose"]), "face": slice(0, OFFSET["left_hand"]),
             "pose": slice(OFFSET["pose"], OFFSET["right_hand"]), "every landmark": slice(None)}[missing]
    frames[2:5, where] = np.nan
    path = write_landmarks(tmp_path / "missing.parquet", frames)
    np.testing.assert_array_equal(read_landmarks(path), frames)
    np.testing.assert_array_equal(read_landmarks(path, dtype=np.float16), frames.astype(np.float16))


def test_reading_imports_neither_pandas_nor_tensorflow(tmp_path):
    """kit prepare stays light: reading files loads no pandas (0.15 s, ~60 MB) and no TensorFlow."""
    path = write_landmarks(tmp_path / "a.parquet", random_frames(np.random.default_rng(4), 3))
    code = ("import sys, numpy as np; import kit.data.prepare; from kit.data.parquet import read_landmarks; "
            f"read_landmarks({str(path)!r}, dtype=np.float16); "
            "print(sorted(m for m in ('pandas', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
