"""`kit stats`: what a competition-layout data set holds, as tables and PNG plots.

Sequences per sign and per participant come from train.csv alone. Lengths (frames per sequence) and each
hand's missing rate need the landmarks: read from the training cache when one is given (fast, memory-mapped),
else from the parquet files. A hand is missing in a frame when all its points are NaN, and so is the face (real files
have frames without a face: 0.5% of frames in a public sample of the real data); a participant's missing rates are
over all of their frames (long sequences weigh more, as they do in training).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.data import landmarks as L
from kit.errors import BadFile, KitError
from kit.progress import say, track

DPI = 100
N_LISTED_SIGNS = 10  # rarest and most common signs printed when there are more than 3x this many
PLOTS = ("signs.png", "participants.png", "lengths.png", "missing.png")


@dataclass
class ParticipantStats:
    sequences: int = 0
    frames: int = 0
    left_missing: int = 0  # frames without the left hand
    right_missing: int = 0
    face_missing: int = 0  # frames without the face
    faceless_sequences: int = 0  # sequences with at least one such frame


@dataclass
class DataStats:
    """Counts of a data set: `tables()` for rich, `str()` the one-paragraph summary and where the plots are."""

    data_dir: Path
    out_dir: Path
    signs: Counter
    participants: dict[int, ParticipantStats]
    lengths: dict[int, list[int]]  # frames per sequence read, by participant
    source: str  # where lengths and missing rates came from
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, problem) of files that could not be read
    plots: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        n = sum(self.signs.values())
        text = f"{self.data_dir}: {n:,} sequences of {len(self.signs)} signs by {len(self.participants)} participants"
        lengths = self.all_lengths()
        if len(lengths):
            q = np.percentile(lengths, [0, 50, 95, 100])
            text += (f"; frames per sequence: min {q[0]:.0f}, median {q[1]:.0f}, mean {lengths.mean():.1f}, "
                     f"95% {q[2]:.0f}, max {q[3]:.0f} (from {self.source})")
        faceless = sum(p.face_missing for p in self.participants.values())
        if len(lengths):
            files = sum(p.faceless_sequences for p in self.participants.values())
            text += (f"; frames without a face: {faceless:,} of {int(lengths.sum()):,} "
                     f"({100 * faceless / max(int(lengths.sum()), 1):.2f}%) in {files:,} sequences")
        if self.bad:
            text += f"; {len(self.bad)} unreadable files left out, first: {self.bad[0][0]}: {self.bad[0][1]}"
        return text + f"\nplots: {', '.join(str(p) for p in self.plots)}"

    def tables(self) -> list:
        from rich.table import Table

        people = Table(title="per participant")
        for column in ("participant", "sequences", "median frames", "frames without left hand",
                       "frames without right hand", "frames without a face"):  # shares of frames, not of sequences
            people.add_column(column, justify="right")
        for pid, p in sorted(self.participants.items()):
            median = f"{np.median(self.lengths[pid]):.0f}" if self.lengths.get(pid) else "-"
            people.add_row(str(pid), f"{p.sequences:,}", median, _rate(p.left_missing, p.frames),
                           _rate(p.right_missing, p.frames))
        signs = Table(title="sequences per sign" + ("" if len(self.signs) <= 3 * N_LISTED_SIGNS else
                                                      f" ({N_LISTED_SIGNS} rarest and {N_LISTED_SIGNS} most common)"))
        signs.add_column("sign")
        signs.add_column("sequences", justify="right")
        ranked = sorted(self.signs.items(), key=lambda item: (item[1], item[0]))
        if len(ranked) > 3 * N_LISTED_SIGNS:
            ranked = ranked[:N_LISTED_SIGNS] + [("...", None)] + ranked[-N_LISTED_SIGNS:]
        for sign, count in ranked:
            signs.add_row(sign, "..." if count is None else f"{count:,}")
        return [people, signs]

    def __str__(self) -> str:
        return self.summary()

    def all_lengths(self) -> np.ndarray:
        return np.asarray([n for lengths in self.lengths.values() for n in lengths], np.int64)


def _rate(missing: int, frames: int) -> str:
    return f"{100 * missing / frames:.1f}%" if frames else "-"


def face_missing(frames: np.ndarray) -> int:
    """Frames of a `[T, 543, 3]` sequence in which the face is entirely NaN."""
    return int(np.isnan(frames[:, list(L.FACE), :2]).all(axis=(1, 2)).sum())


def hand_missing(frames: np.ndarray) -> tuple[int, int]:
    """Frames of a `[T, 543, 3]` sequence in which the left and the right hand are entirely NaN."""
    left = np.isnan(frames[:, list(L.LEFT_HAND), :2]).all(axis=(1, 2))
    right = np.isnan(frames[:, list(L.RIGHT_HAND), :2]).all(axis=(1, 2))
    return int(left.sum()), int(right.sum())


def data_stats(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None, limit: int | None = None) -> DataStats:
    """Count the data set in `data_dir` (the first `limit` rows of train.csv) and write PNG plots to `out_dir`.

    `out_dir` defaults to `data_dir`/stats. With `cache_dir`, landmarks of the sequences in that cache are read
    from it; the rest (if any) from their parquet files, said out loud.
    """
    from kit.data.prepare import TRAIN_CSV, read_train_csv, select_rows

    data_dir = Path(data_dir)
    rows = select_rows(read_train_csv(data_dir / TRAIN_CSV), None, limit, data_dir / TRAIN_CSV)
    if not rows:
        raise KitError(f"{data_dir / TRAIN_CSV}: no rows: nothing to count")
    lookup = _cache_lookup(cache_dir)
    if lookup is not None:
        n_cached = sum(r.sequence_id in lookup[1] for r in rows)
        if n_cached < len(rows):
            say(f"note: {len(rows) - n_cached} of {len(rows)} sequences are not in {cache_dir}: reading those "
                "from their parquet files")
    source = f"kit prepare's cache in {cache_dir}" if lookup is not None else "the parquet files"
    stats = DataStats(data_dir, Path(out_dir) if out_dir is not None else data_dir / "stats",
                      Counter(r.sign for r in rows), {}, {}, source)
    for row in track(rows, f"reading landmarks from {source}"):
        frames = _frames(data_dir, row, lookup, stats.bad)
        if frames is None:
            continue
        p = stats.participants.setdefault(row.participant_id, ParticipantStats())
        left, right = hand_missing(frames)
        p.sequences += 1
        p.frames += len(frames)
        p.left_missing += left
        p.right_missing += right
        faceless = face_missing(frames)
        p.face_missing += faceless
        p.faceless_sequences += faceless > 0
        stats.lengths.setdefault(row.participant_id, []).append(len(frames))
    for row in rows:  # participants whose every file was unreadable still have their train.csv count
        stats.participants.setdefault(row.participant_id, ParticipantStats())
    stats.plots = write_plots(stats, rows)
    return stats


def _cache_lookup(cache_dir):
    if cache_dir is None:
        return None
    from kit.data.cache import open_cache

    cache = open_cache(cache_dir)
    return cache, {int(s): i for i, s in enumerate(cache.sequence_ids)}


def _frames(data_dir: Path, row, lookup, bad: list) -> np.ndarray | None:
    from kit.data.parquet import read_landmarks

    if lookup is not None and row.sequence_id in lookup[1]:
        return lookup[0].frames(lookup[1][row.sequence_id])
    try:
        return read_landmarks(data_dir / row.path)
    except BadFile as err:  # counted, listed in the summary, and the rest still counted
        bad.append((err.path, err.problem))
        return None


def write_plots(stats: DataStats, rows) -> list[Path]:
    """signs.png, participants.png, lengths.png and missing.png in `stats.out_dir`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    try:
        stats.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KitError(f"{stats.out_dir}: cannot write the plots here ({err.strerror}): give --out DIR") from None
    paths = []

    def save(fig, name: str) -> None:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        fig.savefig(stats.out_dir / name, dpi=DPI)
        paths.append(stats.out_dir / name)

    counts = sorted(stats.signs.items(), key=lambda item: -item[1])
    fig = Figure(figsize=(max(6, 0.06 * len(counts) + 2), 4))
    ax = fig.add_subplot()
    ax.bar(range(len(counts)), [c for _, c in counts], color="#1f77b4", width=0.9)
    if len(counts) <= 40:
        ax.set_xticks(range(len(counts)), [s for s, _ in counts], rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(counts)} signs, most common first")
    ax.set_ylabel("sequences")
    ax.set_title("sequences per sign")
    save(fig, "signs.png")

    per = Counter(r.participant_id for r in rows)
    pids = sorted(per)
    fig = Figure(figsize=(max(6, 0.35 * len(pids) + 2), 4))
    ax = fig.add_subplot()
    ax.bar([str(p) for p in pids], [per[p] for p in pids], color="#1f77b4")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.set_ylabel("sequences")
    ax.set_title("sequences per participant")
    save(fig, "participants.png")

    lengths = stats.all_lengths()
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    if len(lengths):
        ax.hist(lengths, bins=min(50, max(5, len(np.unique(lengths)))), color="#1f77b4")
        ax.axvline(np.median(lengths), color="k", linestyle="--", label=f"median {np.median(lengths):.0f}")
        ax.legend()
    ax.set_xlabel("frames per sequence")
    ax.set_ylabel("sequences")
    ax.set_title(f"sequence lengths ({len(lengths):,} sequences)")
    save(fig, "lengths.png")

    fig = Figure(figsize=(max(6, 0.45 * len(pids) + 2), 4))
    ax = fig.add_subplot()
    x = np.arange(len(pids))
    for offset, hand, color in ((-0.2, "left", "#1f77b4"), (0.2, "right", "#d62728")):
        rates = [100 * getattr(stats.participants[p], f"{hand}_missing") / max(stats.participants[p].frames, 1)
                 for p in pids]
        ax.bar(x + offset, rates, width=0.4, color=color, label=f"{hand} hand")
    ax.set_xticks(x, [str(p) for p in pids], rotation=90, fontsize=7)
    ax.set_ylim(0, 118)  # headroom for the legend above the 100% line
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("% of frames without the hand")
    ax.set_title("frames without each hand, per participant (% of frames)")
    ax.legend(ncol=2, loc="upper center")
    save(fig, "missing.png")
    return paths
