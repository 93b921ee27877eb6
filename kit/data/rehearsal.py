"""`kit synth --like-competition`: a synthetic data set of the real competition's shape, for full-scale rehearsals.

The shape is the real one: the 21 real participant ids, each with the real number of sequences (94,477 in all,
from kit/assets/competition_shape.json), all 250 signs, and frame counts drawn from LENGTHS. The signs and
signers are kit.data.synth's, so the set is learnable and accuracy on held-out signers means something.

Built for ~94k files (~42 GB, like the real ~40 GB): worker processes on every core, a progress bar, the disk
space checked before starting, and safe to kill: each file is written under a temporary name and renamed when
complete, a re-run skips the files already there, and train.csv is written last, atomically. Every sequence
depends only on (seed, signer, slot), so `--fraction F` writes the first F of every signer's slots: a subset of
the full set, with the same per-signer proportions, length distribution and (above ~0.4 %) every sign.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from kit.data import synth
from kit.errors import KitError
from kit.data.landmarks import N_CLASSES, SIGN_MAP, SIGN_MAP_NAME, sign_names
from kit.progress import say, track

SHAPE = synth.ASSETS / "competition_shape.json"
MANIFEST = ".kit-synth.json"  # what this folder holds (seed, counts): a re-run may only add to the same set
LENGTH_SALT, SLOT_SALT = 32452843, 49979687  # random streams apart from kit.data.synth's
# Frames per sequence: a mixture of log-normals, (share, median, sigma of log), clipped to 1..MAX_LENGTH.
# Chosen to give the real competition's median ~33 and mean ~38 frames, most under 100 (98 %) and a long tail
# (0.1 % over ~320, a few dozen at MAX_LENGTH in the full set). The short part stands for recordings where the
# tracker caught only a glimpse: 5 of the 10 real sample files have 3 to 7 frames (a public sample of 747 real
# files has a median of 18). Not fitted: the real lengths are not in samples/; tests/data/test_rehearsal.py checks
# these figures and the 10 samples against them.
LENGTHS = ((0.03, 8.0, 0.6), (0.91, 33.0, 0.40), (0.06, 72.0, 0.70))
MAX_LENGTH = 500
LEFT_HANDED = 0.2  # share of signers who lead with the left hand, as in kit.data.synth
# Disk per file, fitted on this writer's output (snappy, row_id and x/y/z plain): ~11.2 kB per frame and
# ~18 kB per file; the estimate errs high so that a run never fills the disk halfway.
BYTES_PER_FRAME, BYTES_PER_FILE = 12_000, 24_000
CHUNK = 32  # sequences per task: big enough that scheduling is free, small enough to balance the workers


@dataclass(frozen=True)
class RehearsalSummary:
    """What `synthesize_like_competition` wrote."""

    out: Path
    n_sequences: int
    n_signers: int
    n_signs: int
    lengths: np.ndarray
    written: int  # files written by this run
    seconds: float

    def __str__(self) -> str:
        rate = self.written / self.seconds if self.seconds else 0.0
        return (
            f"{self.out}: {self.n_sequences:,} sequences of {self.n_signers} signers x {self.n_signs} signs, "
            f"frames median {np.median(self.lengths):.0f}, mean {self.lengths.mean():.1f}, max {self.lengths.max()}; "
            f"this run wrote {self.written:,} files ({self.n_sequences - self.written:,} were already there) in "
            f"{self.seconds:.1f} s ({rate:.0f} files/s): train.csv, {SIGN_MAP_NAME}, "
            f"train_landmark_files/<participant_id>/<sequence_id>.parquet"
        )


# ---------------------------------------------------------------- the shape: pure functions
def real_counts() -> dict[int, int]:
    """Sequences per participant in the real train.csv: 21 participants, 94,477 sequences (the shipped asset)."""
    shape = json.loads(SHAPE.read_text())
    return {int(p): int(n) for p, n in shape["sequences_per_participant"].items()}


def counts_from_csv(path: Path) -> dict[int, int]:
    """Sequences per participant_id in a CSV such as the real train.csv or train_ids_folds5.csv."""
    path = Path(path)
    try:
        ids = pd.read_csv(path, usecols=["participant_id"])["participant_id"]
    except FileNotFoundError:
        raise KitError(f"{path}: not found: --counts takes a CSV with a participant_id column, e.g. train.csv")
    except ValueError as err:
        raise KitError(f"{path}: no participant_id column ({str(err).splitlines()[0]}): give train.csv or "
                       "train_ids_folds5.csv") from None
    if ids.empty or not pd.api.types.is_integer_dtype(ids):
        raise KitError(f"{path}: participant_id must be whole numbers on every row")
    return {int(p): int(n) for p, n in ids.value_counts().sort_index().items()}


def scaled_counts(counts: dict[int, int], fraction: float) -> dict[int, int]:
    """Each signer's count times `fraction`, rounded, at least 1: the per-signer proportions kept."""
    return {p: max(1, round(n * fraction)) for p, n in counts.items()}


def frame_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` frame counts drawn from the LENGTHS mixture, clipped to 1..MAX_LENGTH."""
    shares, medians, sigmas = (np.array(column) for column in zip(*LENGTHS))
    part = rng.choice(len(LENGTHS), n, p=shares)
    frames = np.round(medians[part] * np.exp(sigmas[part] * rng.standard_normal(n)))
    return np.clip(frames, 1, MAX_LENGTH).astype(np.int64)


def plan(counts: dict[int, int], fraction: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Every sequence to write: participant_id, sequence_id, sign (index), frames, and signer/slot (its seeds).

    Signer k's slot j does sign (k * 250 / n_signers + j) mod 250: each signer cycles through all signs, from
    a different start, so any first-F share of the slots spreads over all signs. Sequence ids are unique over
    the full set and drawn once for it, so a fraction is exactly a subset of the full set.
    """
    if not 0 < fraction <= 1:
        raise KitError(f"--fraction {fraction}: must be in (0, 1], e.g. 0.05 for a quick rehearsal")
    participants = sorted(counts)
    full = np.array([counts[p] for p in participants])
    ids = 10_000 + np.random.default_rng([seed, synth.ID_SALT, 1]).choice(2**32 - 10_000, full.sum(), replace=False)
    keep = scaled_counts(counts, fraction)
    parts, start = [], 0
    for k, (participant, n) in enumerate(zip(participants, full)):
        m = keep[participant]
        slot = np.arange(m)
        parts.append(pd.DataFrame({
            "participant_id": participant,
            "sequence_id": ids[start:start + m],
            "sign": (round(k * N_CLASSES / len(participants)) + slot) % N_CLASSES,
            "frames": frame_counts(np.random.default_rng([seed, LENGTH_SALT, k]), int(n))[:m],
            "signer": k,
            "slot": slot,
        }))
        start += int(n)
    return pd.concat(parts, ignore_index=True)


def left_handed(n_signers: int, seed: int) -> set[int]:
    """The signers (indices) who lead with the left hand: LEFT_HANDED of them, the same for every fraction."""
    rng = np.random.default_rng([seed, synth.ID_SALT, 2])
    return set(rng.choice(n_signers, round(LEFT_HANDED * n_signers), replace=False).tolist())


def disk_needed(frames: int, files: int) -> int:
    """Bytes that `files` landmark files of `frames` frames in all take on disk, estimated on the high side."""
    return frames * BYTES_PER_FRAME + files * BYTES_PER_FILE


def check_disk(out: Path, needed: int, free: int) -> None:
    """KitError naming the folder, the space needed and free, and the way out, when `needed` > `free`."""
    if needed > free:
        raise KitError(f"{out}: needs ~{needed / 1e9:.1f} GB free for the landmark files, the disk has "
                       f"{free / 1e9:.1f} GB: free space, choose another --out, or write less with --fraction")


# ---------------------------------------------------------------- writing
def synthesize_like_competition(out: Path, fraction: float = 1.0, counts: dict[int, int] | None = None,
                                seed: int = 0, workers: int = 0) -> RehearsalSummary:
    """Write the competition-shaped set (or its `fraction`) into `out`; a re-run adds only what is missing."""
    started = time.perf_counter()
    out, counts = Path(out), counts or real_counts()
    if seed < 0:
        raise KitError(f"--seed {seed}: must be 0 or more")
    if workers < 0:
        raise KitError(f"--workers {workers}: must be 0 (one per CPU core) or more")
    todo = plan(counts, fraction, seed)
    manifest = {"kind": "like-competition", "seed": seed, "counts": {str(p): n for p, n in sorted(counts.items())}}
    present = _present(out) if _resuming(out, manifest) else set()
    rel = [f"train_landmark_files/{p}/{s}.parquet" for p, s in zip(todo["participant_id"], todo["sequence_id"])]
    new = todo[np.array([r not in present for r in rel], dtype=bool)]
    needed, free = disk_needed(int(new["frames"].sum()), len(new)), shutil.disk_usage(_existing(out)).free
    check_disk(out, needed, free)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    workers = min(workers or _cores(), max(1, math.ceil(len(new) / CHUNK)))
    share = "all" if fraction == 1 else f"{fraction:g}"
    say(f"kit synth: {len(todo):,} sequences ({share} of every signer's), {len(todo) - len(new):,} already "
        f"in {out}; writing {len(new):,} ({int(new['frames'].sum()):,} frames, ~{needed / 1e9:.1f} GB of "
        f"{free / 1e9:.1f} GB free) with {workers} worker process(es)")
    for _ in track(_write(out, new, seed, len(counts), workers), "synthesising", total=len(new)):
        pass
    # written last and atomically, so that an interrupted run leaves no train.csv pointing at missing files
    shutil.copyfile(SIGN_MAP, out / SIGN_MAP_NAME)
    names = np.array(sign_names())
    table = pd.DataFrame({"path": rel, "participant_id": todo["participant_id"],
                          "sequence_id": todo["sequence_id"], "sign": names[todo["sign"].to_numpy()]})
    table = table.iloc[np.argsort(table["sequence_id"].astype(str).to_numpy(), kind="stable")]  # real order
    table.to_csv(out / "train.csv.tmp", index=False)
    os.replace(out / "train.csv.tmp", out / "train.csv")
    return RehearsalSummary(out, len(todo), len(counts), int(todo["sign"].nunique()), todo["frames"].to_numpy(),
                            len(new), time.perf_counter() - started)


def _resuming(out: Path, manifest: dict) -> bool:
    """True when `out` holds this very set (same manifest), False when it is new or empty; else KitError."""
    path = out / MANIFEST
    if path.is_file():
        held = json.loads(path.read_text())
        if held != manifest:
            raise KitError(f"{out}: holds a like-competition set of seed {held.get('seed')} with other signer "
                           f"counts or seed; give the same --seed and --counts to resume it, or a new --out")
        return True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KitError(f"{out}: already exists and is not empty; synth never overwrites, choose a new --out folder")
    return False


def _existing(path: Path) -> Path:
    """`path` or its nearest existing parent: where to ask how much disk is free."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _present(out: Path) -> set[str]:
    """Landmark files already complete in `out` (relative paths); leftover temporary files are removed."""
    present = set()
    root = out / "train_landmark_files"
    for folder in root.iterdir() if root.is_dir() else []:
        for entry in os.scandir(folder):
            if entry.name.endswith(".parquet"):
                present.add(f"train_landmark_files/{folder.name}/{entry.name}")
            elif entry.name.startswith("."):  # a file a killed run was writing
                os.unlink(entry.path)
    return present


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write(out: Path, new: pd.DataFrame, seed: int, n_signers: int, workers: int) -> Iterator[None]:
    """Write the rows of `new`, yielding once per file written."""
    columns = ["participant_id", "sequence_id", "sign", "frames", "signer", "slot"]
    rows = [tuple(int(v) for v in row) for row in new[columns].itertuples(index=False)]
    chunks = [(str(out), seed, n_signers, rows[i:i + CHUNK]) for i in range(0, len(rows), CHUNK)]
    if workers == 1:
        for chunk in chunks:
            yield from [None] * _write_chunk(chunk)
        return
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                          else "spawn")  # never fork: pyarrow's and rich's threads hold locks
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        for future in as_completed([pool.submit(_write_chunk, chunk) for chunk in chunks]):
            yield from [None] * future.result()
    except BrokenProcessPool:
        raise KitError(f"{out}: a worker process died (killed, or out of memory): run the same kit synth again "
                       "to finish (files already written are kept)") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@cache
def _signer(seed: int, n_signers: int, k: int) -> dict:
    return synth.signer_recipe(seed, k, k in left_handed(n_signers, seed))


@cache
def _sign(index: int) -> dict:
    return synth.sign_recipe(index)


def render_slot(seed: int, n_signers: int, signer: int, slot: int, sign: int,
                frames: int) -> tuple[int, np.ndarray]:
    """First frame number and landmarks [frames, 543, 3] of one planned sequence: the same on every run.

    Sequences shorter than synth.MIN_FRAMES are the middle of a MIN_FRAMES recording (a glimpse of the sign).
    """
    rng = np.random.default_rng([seed, SLOT_SALT, signer, slot])
    first = int(rng.integers(1, synth.MAX_FIRST_FRAME + 1))
    landmarks = synth.render(rng, _sign(sign), _signer(seed, n_signers, signer), max(frames, synth.MIN_FRAMES))
    start = (len(landmarks) - frames) // 2
    return first, landmarks[start:start + frames]


def _write_chunk(job: tuple[str, int, int, list[tuple[int, ...]]]) -> int:
    """Render and write one chunk of sequences (in a worker); each file appears only once complete."""
    out, seed, n_signers, rows = job
    for participant, sequence, sign, frames, signer, slot in rows:
        first, landmarks = render_slot(seed, n_signers, signer, slot, sign, frames)
        folder = Path(out) / "train_landmark_files" / str(participant)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{sequence}.{os.getpid()}.tmp"
        pq.write_table(synth.landmark_table(first, landmarks), temporary, use_dictionary=synth.DICTIONARY)
        os.replace(temporary, folder / f"{sequence}.parquet")
    return len(rows)
