"""The training cache: every sequence's landmarks in a few large float16 files, memory-mapped for reading.

Layout of a cache folder (written by `kit prepare`, read by `open_cache`):

    shards/RRRRR-CCCCC.bin   frames of many sequences back to back: float16 [frames, 543, 3], C order
    shards/RRRRR-CCCCC.json  that shard's manifest: per sequence the file it came from (path, size, mtime_ns)
                             and where its frames lie (offset, length). Written after the .bin, so a shard
                             is committed exactly when its .json exists; R is the run, C the chunk of that run.
    index.npz                the sequences of the last *finished* `kit prepare`: ids, labels, which shard and
                             where. Written last, removed when a run starts changing shards: no index.npz means
                             the cache is missing or incomplete, never half-right.
    bad_files.csv            files that `kit prepare --skip-bad` left out (path,problem).

Why float16: it halves disk and page cache (about 13 GB instead of 27 GB for the full data set, which then
fits Kaggle's 20 GB working disk), and its rounding is noise-level. Measured on the real samples after
centring on the nose and dividing by each axis' spread (bench/data/prepare.py prints it): rms error 0.00075,
max 0.0064, while face points already move 0.004..0.008 (median) between consecutive frames.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.errors import KitError
from kit.data.landmarks import N_LANDMARKS

FORMAT = 1  # bump when the layout changes; open_cache then asks for a rebuild instead of misreading
DTYPE = np.dtype(np.float16)
FRAME_BYTES = N_LANDMARKS * 3 * DTYPE.itemsize
SHARDS = "shards"
INDEX = "index.npz"
BAD_FILES = "bad_files.csv"
TMP = ".tmp"


@dataclass(frozen=True)
class CachedFile:
    """One manifest entry: the source file as it was when read, and where its frames are."""

    path: str  # as written in train.csv, relative to the data folder
    size: int
    mtime_ns: int
    shard: str
    offset: int  # in frames, from the start of the shard
    length: int  # frames

    def matches(self, size: int, mtime_ns: int) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns


class ShardWriter:
    """Appends sequences to `shards/<name>.bin.tmp`; `commit` makes the shard and its manifest real.

    Writing and committing may happen in different processes: a worker adds and `close`s (a closed writer
    pickles), and the main process commits, so that the fsync there keeps no worker waiting for the disk.
    """

    def __init__(self, cache_dir: Path, name: str):
        self.dir = Path(cache_dir) / SHARDS
        self.name = name
        self.entries: list[CachedFile] = []
        self.frames = 0
        self._tmp = self.dir / f"{name}.bin{TMP}"
        self._file = _writing(self._tmp, lambda: open(self._tmp, "wb"))

    def add(self, path: str, size: int, mtime_ns: int, frames: np.ndarray) -> None:
        frames = np.ascontiguousarray(frames, dtype=DTYPE)
        _writing(self._tmp, lambda: self._file.write(frames.data))
        self.entries.append(CachedFile(path, size, mtime_ns, self.name, self.frames, len(frames)))
        self.frames += len(frames)

    def close(self) -> ShardWriter:
        """Stop writing (the data is then in the page cache, not yet safely on disk)."""
        if self._file is not None:
            _writing(self._tmp, self._file.close)
            self._file = None
        return self

    def commit(self) -> list[CachedFile]:
        """Publish the shard (nothing if it holds no sequence); fsync first so a crash cannot expose zeros."""
        self.close()
        if not self.entries:
            _writing(self._tmp, self._tmp.unlink)
            return []
        _writing(self._tmp, lambda: _fsync(self._tmp))
        _writing(self._tmp, lambda: os.replace(self._tmp, self.dir / f"{self.name}.bin"))
        manifest = {"format": FORMAT, "frames": self.frames, "files": [_entry_json(e) for e in self.entries]}
        write_atomic(self.dir / f"{self.name}.json", json.dumps(manifest).encode())
        return self.entries


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)  # (Windows flushes only files open for writing)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry_json(entry: CachedFile) -> dict:
    return {"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns,
            "offset": entry.offset, "length": entry.length}


def _writing(path: Path, action):
    try:
        return action()
    except OSError as err:
        raise KitError(f"{path}: cannot write the cache ({err.strerror or err}): free disk space or pass "
                       "another --cache") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file, fsync, then rename over `path`: readers see the old file or the new, never half."""
    tmp = path.with_name(path.name + TMP)

    def write():
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    _writing(path, write)


def committed_shards(cache_dir: Path) -> dict[str, tuple[int, list[CachedFile]]]:
    """{shard name: (frames, entries)} for every committed shard, in name (= commit run) order.

    Tidies first: temp files of a killed run, a .bin whose manifest never got written, and a manifest that is
    unreadable or whose .bin is gone or short are removed, so that their files count as not cached and are
    read again.
    """
    shard_dir = Path(cache_dir) / SHARDS
    shard_dir.mkdir(parents=True, exist_ok=True)
    for tmp in shard_dir.glob(f"*{TMP}"):
        tmp.unlink()
    shards = {}
    for manifest in sorted(shard_dir.glob("*.json")):
        name, data = manifest.stem, shard_dir / f"{manifest.stem}.bin"
        try:
            info = json.loads(manifest.read_text())
        except ValueError:  # written atomically, so only damage from outside gets here: read its files again
            info = {}
        if info.get("format") != FORMAT or not data.is_file() or data.stat().st_size != info["frames"] * FRAME_BYTES:
            manifest.unlink()
            continue
        shards[name] = (info["frames"], [CachedFile(shard=name, **e) for e in info["files"]])
    for data in shard_dir.glob("*.bin"):
        if data.stem not in shards:
            data.unlink()
    return shards


def remove_shards(cache_dir: Path, names) -> None:
    """Delete shards, manifest first so that a kill in between leaves an orphan .bin, never a dangling manifest."""
    for name in names:
        (Path(cache_dir) / SHARDS / f"{name}.json").unlink()
        (Path(cache_dir) / SHARDS / f"{name}.bin").unlink()


def write_index(cache_dir: Path, signs: list[str], shard_frames: dict[str, int], sequence_ids, participant_ids,
                labels, entries: list[CachedFile]) -> None:
    """Publish the finished cache: one row per sequence, in train.csv order."""
    shards = sorted({e.shard for e in entries})
    position = {name: i for i, name in enumerate(shards)}
    arrays = {
        "format": np.asarray(FORMAT),
        "signs": np.asarray(signs, dtype=str),
        "shards": np.asarray(shards, dtype=str),
        "shard_frames": np.asarray([shard_frames[s] for s in shards], dtype=np.int64),
        "sequence_ids": np.asarray(sequence_ids, dtype=np.int64),
        "participant_ids": np.asarray(participant_ids, dtype=np.int64),
        "labels": np.asarray(labels, dtype=np.int32),
        "lengths": np.asarray([e.length for e in entries], dtype=np.int32),
        "shard": np.asarray([position[e.shard] for e in entries], dtype=np.int32),
        "offsets": np.asarray([e.offset for e in entries], dtype=np.int64),
    }
    buffer = io.BytesIO()  # a few MB for the full data set
    np.savez(buffer, **arrays)
    write_atomic(Path(cache_dir) / INDEX, buffer.getvalue())


def remove_index(cache_dir: Path) -> None:
    """Mark the cache incomplete while a run changes it."""
    (Path(cache_dir) / INDEX).unlink(missing_ok=True)


class Cache:
    """The sequences of a finished `kit prepare`; `frames(i)` reads one from memory-mapped shards."""

    def __init__(self, path: Path, index: dict[str, np.ndarray]):
        self.path = Path(path)
        self.sequence_ids: np.ndarray = index["sequence_ids"]
        self.participant_ids: np.ndarray = index["participant_ids"]
        self.labels: np.ndarray = index["labels"]
        self.lengths: np.ndarray = index["lengths"]
        self.signs: list[str] = [str(s) for s in index["signs"]]
        self._shard = index["shard"]
        self._offsets = index["offsets"]
        self._shard_names = [str(s) for s in index["shards"]]
        self._shard_frames = index["shard_frames"]
        self._maps: dict[int, np.memmap] = {}
        self._resident = None  # the landmarks training reads, in RAM (kit.training.pipeline.resident)

    def __len__(self) -> int:
        return len(self.sequence_ids)

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r}: {len(self)} sequences, {int(self.lengths.sum())} frames)"

    def frames(self, i: int) -> np.ndarray:
        """Sequence `i` as float32 `[n_frames, 543, 3]`, NaN where a landmark is missing."""
        return self.raw_frames(i).astype(np.float32)

    def raw_frames(self, i: int) -> np.ndarray:
        """Sequence `i` as stored: a float16 `[n_frames, 543, 3]` view of the memory-mapped shard."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for a cache of {len(self)}")
        start = int(self._offsets[i])
        return self._map(int(self._shard[i]))[start:start + int(self.lengths[i])]

    def _map(self, shard: int) -> np.memmap:
        # Opened on first use: a memmap holds a file descriptor, and training may touch only some shards.
        if shard not in self._maps:
            path = self.path / SHARDS / f"{self._shard_names[shard]}.bin"
            shape = (int(self._shard_frames[shard]), N_LANDMARKS, 3)
            self._maps[shard] = np.memmap(path, dtype=DTYPE, mode="r", shape=shape)
        return self._maps[shard]

    def __getstate__(self) -> dict:
        # Sent to worker processes without the maps (pickling a memmap would copy its whole shard).
        return {**self.__dict__, "_maps": {}, "_resident": None}


def open_cache(cache_dir: str | os.PathLike) -> Cache:
    """The cache in `cache_dir`; KitError saying how to build it when it is missing, incomplete or damaged."""
    cache_dir = Path(cache_dir)
    index_path = cache_dir / INDEX
    if not index_path.is_file():
        if (cache_dir / SHARDS).is_dir():
            raise KitError(f"{cache_dir}: the training cache is incomplete (a kit prepare run stopped before it "
                           f"finished): run `kit prepare --data <competition folder> --cache {cache_dir}` again; "
                           "it keeps the work already done")
        raise KitError(f"{cache_dir}: no training cache here: run `kit prepare --data <competition folder> "
                       f"--cache {cache_dir}` first")
    with np.load(index_path, allow_pickle=False) as npz:
        index = {key: npz[key] for key in npz.files}
    if int(index.get("format", -1)) != FORMAT:
        raise KitError(f"{cache_dir}: made by another version of kit: delete the folder and run `kit prepare "
                       f"--data <competition folder> --cache {cache_dir}`")
    for name, frames in zip(index["shards"], index["shard_frames"]):
        data = cache_dir / SHARDS / f"{name}.bin"
        if not data.is_file() or data.stat().st_size != int(frames) * FRAME_BYTES:
            raise KitError(f"{data}: missing or cut short: run `kit prepare --data <competition folder> "
                           f"--cache {cache_dir}` again to re-read its files")
    return Cache(cache_dir, index)
