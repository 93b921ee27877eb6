"""`kit prepare`: validate every landmark file listed in train.csv and copy it into the training cache.

Built for the full data set (94,477 files, ~40 GB): worker processes read files in parallel (kit.data.parquet)
and each streams its chunk of files into one shard of the cache, so memory stays flat whatever the number
of files. A shard is committed whole or not at all (kit.data.cache), and its manifest says which file version
(path, size, mtime) it holds, so a re-run reads only new or changed files and a killed run resumes where it
stopped. The cache is published (index.npz) only when every selected file is in it.

What crosses between processes is small: a job is a list of paths (a whole shard's worth, so scheduling
costs nothing per file), a result is the shard's file list; the frames go straight from a worker to its
shard file. The main process, otherwise idle, commits each shard (fsync, manifest), so that no worker waits
for the disk. Processes rather than threads: pyarrow and numpy release the GIL for most of a file's
~1.2 ms, yet threads waiting for it in between ran 8,000 files 1.3x slower than processes on 2 cores.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import multiprocessing
import multiprocessing.context
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from kit.data.cache import (BAD_FILES, DTYPE, FRAME_BYTES, CachedFile, ShardWriter, committed_shards, remove_index,
                            remove_shards, write_atomic, write_index)
from kit.errors import BadFile, KitError
from kit.data.parquet import read_landmarks
from kit.progress import track
from kit.runlock import writing

TRAIN_CSV = "train.csv"
SIGN_MAP = "sign_to_prediction_index_map.json"
TRAIN_COLUMNS = ("path", "participant_id", "sequence_id", "sign")
# Files per shard: big enough that the full data set makes ~200 shards (few files, few open memmaps),
# small enough that a killed run loses seconds of work and every worker gets several shards to balance.
MIN_SHARD_FILES, MAX_SHARD_FILES, SHARDS_PER_WORKER = 16, 512, 8


@dataclass(frozen=True)
class PrepareReport:
    """What `build_cache` did; `str()` is the summary `kit prepare` prints."""

    cache: Path
    sequences: int  # in the cache now
    frames: int
    read: int  # files read and cached by this run (new or changed since the last run)
    reused: int  # files already cached and unchanged
    skipped: int  # bad files left out (--skip-bad); listed in bad_files
    seconds: float
    bad_files: Path | None = None

    def __str__(self) -> str:
        text = (f"Cache {self.cache}: {self.sequences:,} sequences, {self.frames:,} frames "
                f"({_size(self.frames * FRAME_BYTES)} of {DTYPE.name}). This run read {self.read:,} new or changed "
                f"files and reused {self.reused:,} unchanged ones in {self.seconds:.1f} s.")
        if self.bad_files is not None:
            text += f" Skipped {self.skipped:,} bad files, listed in {self.bad_files}."
        return text


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


@dataclass(frozen=True)
class Row:
    """One train.csv row; `line` is its line number in the file (the header is line 1)."""

    line: int
    path: str
    participant_id: int
    sequence_id: int
    sign: str
    label: int = -1
    size: int = 0
    mtime_ns: int = 0


@dataclass(frozen=True)
class _Job:
    """One shard's worth of files for a worker: (absolute path, train.csv path, size, mtime_ns) each."""

    cache: Path
    shard: str
    files: list[tuple[str, str, int, int]]
    skip_bad: bool


@dataclass(frozen=True)
class _Done:
    """A finished job: its shard as a worker wrote it (closed, not committed: `_run_jobs` commits it)."""

    writer: ShardWriter
    bad: list[tuple[str, str, str]] = field(default_factory=list)  # (train.csv path, full path, problem)
    n_files: int = 0


def build_cache(data: str | os.PathLike, cache: str | os.PathLike, *, workers: int = 0,
                participants: list[int] | None = None, limit: int | None = None,
                skip_bad: bool = False) -> PrepareReport:
    """Cache the landmark files of `data`/train.csv in `cache`, reading only what is new or changed.

    `workers=0` uses one process per CPU core; `participants` and `limit` select a subset (limit counts
    train.csv rows after the participant filter). A bad file stops the run with BadFile, unless `skip_bad`,
    which leaves it out and lists it in `cache`/bad_files.csv. Shards committed before a stop are kept.
    """
    started = time.perf_counter()
    data, cache, workers = Path(data), Path(cache), _workers(workers)
    selected = select_rows(read_train_csv(data / TRAIN_CSV), participants, limit, data / TRAIN_CSV)
    signs = read_sign_map(data / SIGN_MAP)
    _make_dir(cache)
    with writing(cache, "kit prepare", "cache"):  # a second prepare would delete this one's temp files
        rows, bad = check_rows(data, selected, signs, skip_bad)
        shards = committed_shards(cache)
        cached = _newest(shards)
        todo = [r for r in rows if r.path not in cached or not cached[r.path].matches(r.size, r.mtime_ns)]
        if todo:
            remove_index(cache)  # incomplete until this run finishes
        done, read_bad = _read_files(data, cache, todo, workers, skip_bad, _next_run(shards))
        shard_frames = {name: frames for name, (frames, _) in shards.items()}
        for result in done:
            if result.writer.entries:  # a job whose files were all bad committed no shard
                shard_frames[result.writer.name] = result.writer.frames
                cached.update((e.path, e) for e in result.writer.entries)
        unreadable = {path for path, _ in read_bad}
        rows = [r for r in rows if r.path not in unreadable]
        entries = [cached[r.path] for r in rows]
        write_index(cache, signs, shard_frames, [r.sequence_id for r in rows], [r.participant_id for r in rows],
                    [r.label for r in rows], entries)
        # A shard none of whose files is the latest version of that file can go.
        remove_shards(cache, set(shard_frames) - {e.shard for e in cached.values()})
        bad_files = _bad_files(cache, bad + read_bad, selected, skip_bad)
    read = len(todo) - len(read_bad)
    return PrepareReport(cache, len(rows), sum(e.length for e in entries), read=read, reused=len(rows) - read,
                         skipped=len(bad) + len(read_bad), seconds=time.perf_counter() - started,
                         bad_files=bad_files)


def read_sign_map(path: Path) -> list[str]:
    """Sign names by prediction index, from the competition's sign_to_prediction_index_map.json."""
    if not path.is_file():
        raise KitError(f"{path}: not found: --data must be the competition folder, which holds {SIGN_MAP} "
                       f"beside {TRAIN_CSV}")
    try:
        mapping = json.loads(path.read_text())
        valid = isinstance(mapping, dict) and sorted(mapping.values()) == list(range(len(mapping)))
    except (ValueError, TypeError):
        valid = False
    if not valid or not mapping:
        raise KitError(f"{path}: not a map of sign names to indices 0..N-1: download it again from the competition")
    return sorted(mapping, key=mapping.get)


def read_train_csv(path: Path) -> list[Row]:
    """The rows of train.csv; KitError when it is missing, has the wrong columns or non-numeric ids."""
    if not path.is_file():
        raise KitError(f"{path}: not found: --data must be the competition folder, which holds {TRAIN_CSV} "
                       "and train_landmark_files/")
    types = {"path": pa.string(), "participant_id": pa.int64(), "sequence_id": pa.int64(), "sign": pa.string()}
    try:
        table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as err:
        raise KitError(f"{path}: unreadable ({str(err).splitlines()[0]}): participant_id and sequence_id must be "
                       f"whole numbers on every line") from None
    missing = [c for c in TRAIN_COLUMNS if c not in table.column_names]
    if missing:
        raise KitError(f"{path}: columns are {','.join(table.column_names)}; expected {','.join(TRAIN_COLUMNS)} "
                       "as in the competition's train.csv")
    columns = [table.column(c).to_pylist() for c in TRAIN_COLUMNS]
    return [Row(i + 2, p or "", pid, sid, sign or "") for i, (p, pid, sid, sign) in enumerate(zip(*columns))]


def select_rows(rows: list[Row], participants: list[int] | None, limit: int | None,
                source: Path = Path(TRAIN_CSV)) -> list[Row]:
    """The rows of `participants` (all when None), then the first `limit` of them, in train.csv order."""
    if participants:
        present = {r.participant_id for r in rows}
        unknown = [p for p in participants if p not in present]
        if unknown:
            examples = ", ".join(str(p) for p in sorted(present)[:5])
            raise KitError(f"{source}: no rows for participant(s) {', '.join(map(str, unknown))}: pick from its "
                           f"{len(present)} participants, e.g. {examples}")
        wanted = set(participants)
        rows = [r for r in rows if r.participant_id in wanted]
    if limit is not None:
        if limit < 1:
            raise KitError(f"--limit {limit}: must be at least 1")
        rows = rows[:limit]
    return rows


def check_rows(data: Path, rows: list[Row], signs: list[str],
               skip_bad: bool) -> tuple[list[Row], list[tuple[str, str]]]:
    """Rows with a known sign, a unique sequence_id and an existing file (labelled and stat-ed), and the rest.

    The rest is a list of (train.csv path, problem); without `skip_bad` the first problem is raised.
    """
    label = {s: i for i, s in enumerate(signs)}
    first_line: dict[int, int] = {}
    good, bad = [], []
    for row in rows:
        problem = _row_problem(row, label, first_line)
        full = data / row.path
        status = None if problem else _stat(full)
        if problem or status is None:
            err = (BadFile(data / TRAIN_CSV, f"line {row.line}: {problem}") if problem else
                   BadFile(full, f"missing (listed on line {row.line} of {TRAIN_CSV}): download the data again "
                                 "or remove that line"))
            if not skip_bad:
                raise err
            bad.append((row.path, f"{TRAIN_CSV} {err.problem}" if problem else err.problem))
            continue
        first_line[row.sequence_id] = row.line
        good.append(Row(row.line, row.path, row.participant_id, row.sequence_id, row.sign, label[row.sign],
                        status.st_size, status.st_mtime_ns))
    return good, bad


def _stat(path: Path) -> os.stat_result | None:
    """The file's stat, or None when there is no regular file at `path`."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status if stat.S_ISREG(status.st_mode) else None


def _row_problem(row: Row, label: dict[str, int], first_line: dict[int, int]) -> str | None:
    if not row.sign:
        return f"no sign for {row.path}: every training row needs one of the {len(label)} signs of {SIGN_MAP}"
    if row.sign not in label:
        return (f"sign {row.sign!r} is not in {SIGN_MAP}: correct the sign, or use the map that came with the "
                "data")
    if row.sequence_id in first_line:
        return (f"sequence_id {row.sequence_id} repeats line {first_line[row.sequence_id]}: each sequence must be "
                "listed once; remove the duplicate line")
    return None


def _read_files(data: Path, cache: Path, todo: list[Row], workers: int, skip_bad: bool,
                run: int) -> tuple[list[_Done], list[tuple[str, str]]]:
    """Read `todo` into new shards; the shards made and the bad files met (raises the first without skip_bad)."""
    if not todo:
        return [], []
    per_shard = min(MAX_SHARD_FILES, max(MIN_SHARD_FILES, math.ceil(len(todo) / (workers * SHARDS_PER_WORKER))))
    jobs = [_Job(cache, f"{run:05d}-{n:05d}",
                 [(str(data / r.path), r.path, r.size, r.mtime_ns) for r in todo[start:start + per_shard]], skip_bad)
            for n, start in enumerate(range(0, len(todo), per_shard))]
    done, bad = [], []
    with contextlib.closing(_run_jobs(jobs, workers)) as results:
        for result in track(_per_file(results), "Reading landmark files", total=len(todo)):
            if result is None:
                continue
            done.append(result)
            if result.bad and not skip_bad:
                _, full, problem = result.bad[0]
                raise BadFile(full, problem)
            bad += [(path, problem) for path, _, problem in result.bad]
    return done, bad


def _run_jobs(jobs: list[_Job], workers: int) -> Iterator[_Done]:
    """Results as jobs finish, each shard committed here, in the calling process.

    Closing the generator (a bad file, Ctrl-C) cancels the jobs not started and commits the shards of those
    running once they finish.
    """
    if workers == 1 or len(jobs) == 1:  # no process start-up cost for small runs
        for job in jobs:
            yield _commit(_read_shard(job))
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_process_context())
    running = {pool.submit(_read_shard, job) for job in jobs}
    try:
        for future in as_completed(set(running)):
            running.remove(future)
            yield _commit(future.result())
    except BrokenProcessPool:
        raise KitError(f"{jobs[0].cache}: a worker process died (killed, or out of memory): run kit prepare again "
                       "(finished shards are kept), with fewer --workers if it happens again") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for future in running:  # stopped early: keep what the jobs then running had read
            if not future.cancelled() and future.exception() is None:
                _commit(future.result())


def _commit(result: _Done) -> _Done:
    result.writer.commit()
    return result


def _process_context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one, else spawn; never plain fork.

    A forked child inherits locks held by the parent's threads (pyarrow's and rich's), and can hang on them.
    The fork server starts once per process with this module imported, so each pool after the first starts
    in milliseconds. Like any multiprocessing code, a script calling build_cache needs the
    `if __name__ == "__main__":` guard (notebooks and the kit command need nothing).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])  # no effect once the server runs: harmless
    return context


def _per_file(results: Iterator[_Done]) -> Iterator[_Done | None]:
    """Each result once, then None for its other files, so that the progress bar counts files."""
    for result in results:
        yield result
        yield from [None] * (result.n_files - 1)


def _read_shard(job: _Job) -> _Done:
    """Worker: read each file of the job into one shard (committed later); stop at a bad file unless skip_bad."""
    writer = ShardWriter(job.cache, job.shard)
    bad = []
    for full, path, size, mtime_ns in job.files:
        try:
            frames = read_landmarks(full, dtype=DTYPE)
        except BadFile as err:  # returned as plain strings: BadFile does not survive pickling
            bad.append((path, err.path, err.problem))
            if not job.skip_bad:
                break  # the files before it are still committed
            continue
        writer.add(path, size, mtime_ns, frames)
    return _Done(writer.close(), bad, len(job.files))


def _newest(shards: dict[str, tuple[int, list[CachedFile]]]) -> dict[str, CachedFile]:
    """path -> its entry in the latest shard holding it (shard names sort by the run that wrote them)."""
    return {e.path: e for name in sorted(shards) for e in shards[name][1]}


def _next_run(shards: dict) -> int:
    return 1 + max((int(name.split("-")[0]) for name in shards), default=0)


def _workers(workers: int) -> int:
    if workers < 0:
        raise KitError(f"--workers {workers}: must be 0 (one per CPU core) or more")
    return workers or _usable_cores()


def _usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the whole machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _bad_files(cache: Path, bad: list[tuple[str, str]], selected: list[Row], skip_bad: bool) -> Path | None:
    """Write bad_files.csv (path,problem) in train.csv order under skip_bad; otherwise remove an old one."""
    path = cache / BAD_FILES
    if not skip_bad:
        path.unlink(missing_ok=True)  # it would describe another run
        return None
    line = {r.path: r.line for r in selected}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "problem"])
    writer.writerows(sorted(bad, key=lambda item: line[item[0]]))
    write_atomic(path, text.getvalue().encode())
    return path


def _make_dir(cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise KitError(f"{cache}: cannot create the cache folder ({err.strerror or err}): pass another --cache")
