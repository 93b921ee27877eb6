"""Benchmark `kit prepare` against the competition's own loader, and extrapolate to the full data set.

    python bench/data/prepare.py                          # 2,000 generated files of realistic length
    python bench/data/prepare.py --files 500              # quicker
    python bench/data/prepare.py --workdir /tmp/kit-bench # keep the generated files for the next run

Writes files in the competition's exact format (all 7 columns, dictionary-encoded, snappy, missing hands as
nulls) with lengths drawn like the real ones (mean ~35 frames, median ~27, a tail to a few hundred). Then, on
the same files, all warm in the page cache, it times three things:
  baseline  the competition's loader, one file after another in this process:
            pd.read_parquet(path, columns=["x","y","z"]).values.reshape(n, 543, 3).astype(np.float32)
  kit       `python -m kit.cli prepare` on a fresh cache (validation, float16 cache, default workers: one
            process per core), timed as a user runs it, with the CPU time and peak memory of all its
            processes, read from /proc every 0.1 s (Linux only)
  re-run    the same command again with nothing changed
The machine may be shared: for each timing it also reports how many cores *other* processes kept busy
(from /proc/stat), since wall-clock speed-ups on 2 cores mean little when one of them was taken. CPU time per
file is the figure that does not depend on that.
It also reports the float16 storage error on the real samples (samples/asl-signs).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing: python bench/data/prepare.py
sys.path.insert(0, str(ROOT / "bench"))  # proctree, shared with bench/fullscale.py

from kit.data.landmarks import N_LANDMARKS, OFFSET, landmark_index_column, type_column  # noqa: E402
from proctree import CLOCK, process_tree  # noqa: E402  (bench/, put on sys.path above)

FULL_SET = 94_477
TARGET = 3.0  # issue 6: kit prepare at least 3x the competition's loader
SAMPLES = ROOT / "samples" / "asl-signs"


def realistic_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Frames per file: log-normal with mean ~35 and median ~27, clipped to 2..500, like the competition data."""
    return np.clip(np.round(rng.lognormal(np.log(27), 0.72, n)), 2, 500).astype(int)


def competition_table(rng: np.random.Generator, n_frames: int, start: int) -> pa.Table:
    frame = np.repeat(np.arange(start, start + n_frames, dtype=np.int16), N_LANDMARKS)
    suffix = pa.array([f"-{t}-{i}" for t, i in zip(type_column(), landmark_index_column())] * n_frames)
    # MediaPipe's float32 values, stored as float64 like the real files (so they compress like them too).
    xyz = rng.normal(0.5, 0.15, size=(n_frames, N_LANDMARKS, 3)).astype(np.float32).astype(np.float64)
    for hand in ("left_hand", "right_hand"):  # one hand is usually out of view: NaN for the whole frame
        xyz[rng.random(n_frames) < 0.6, OFFSET[hand]:OFFSET[hand] + 21] = np.nan
    flat = xyz.reshape(-1, 3)
    return pa.table({
        "frame": frame,
        "row_id": pc.binary_join_element_wise(pc.cast(pa.array(frame), pa.string()), suffix, ""),
        "type": pa.array(type_column() * n_frames),
        "landmark_index": np.tile(np.asarray(landmark_index_column(), dtype=np.int16), n_frames),
        **{axis: pa.array(flat[:, j], from_pandas=True) for j, axis in enumerate("xyz")},
    })


def generate(data: Path, n_files: int, seed: int = 0) -> list[Path]:
    """A competition folder with `n_files` landmark files, train.csv and the real sign map; reused if there."""
    rows_csv = data / "train.csv"
    if rows_csv.is_file():
        paths = [data / p for p in pd.read_csv(rows_csv)["path"]]
        if len(paths) == n_files and all(p.is_file() for p in paths):
            return paths
        shutil.rmtree(data)
    rng = np.random.default_rng(seed)
    signs = pd.read_json(ROOT / "kit" / "assets" / "sign_to_prediction_index_map.json", typ="series").index
    rows, paths = [], []
    for i, n_frames in enumerate(realistic_lengths(rng, n_files)):
        pid, sid = 10_000 + i % 21, 1_000_000 + i
        rel = f"train_landmark_files/{pid}/{sid}.parquet"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(competition_table(rng, int(n_frames), int(rng.integers(0, 120))), data / rel)
        rows.append((rel, pid, sid, signs[i % len(signs)]))
        paths.append(data / rel)
    (data / "sign_to_prediction_index_map.json").write_bytes(
        (ROOT / "kit" / "assets" / "sign_to_prediction_index_map.json").read_bytes())
    pd.DataFrame(rows, columns=["path", "participant_id", "sequence_id", "sign"]).to_csv(rows_csv, index=False)
    return paths


def busy_seconds() -> float:
    """CPU seconds spent by everything on the machine since boot (all cores; idle and iowait left out)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK


@dataclass
class Timing:
    wall: float  # seconds
    cpu: float  # CPU seconds of the timed code, all its processes and threads
    others: float  # cores that other processes kept busy meanwhile, on average
    in_run: float = 0.0  # kit prepare's own count, from its report: without interpreter start-up and imports
    peak_sum: int = 0  # bytes: peak resident memory of kit prepare's processes, summed (an upper bound)
    peak_one: int = 0  # bytes: the peak of the largest one
    output: str = ""


def baseline(paths: list[Path]) -> Timing:
    """The competition's loader over every file, one after another, in this process."""
    busy, cpu, started = busy_seconds(), time.process_time(), time.perf_counter()
    for path in paths:
        data = pd.read_parquet(path, columns=["x", "y", "z"])
        data.values.reshape(len(data) // N_LANDMARKS, N_LANDMARKS, 3).astype(np.float32)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Timing(wall, cpu, max(0.0, (busy_seconds() - busy - cpu) / wall))


def run_prepare(data: Path, cache: Path) -> Timing:
    """Run `python -m kit.cli prepare` with its default workers: wall and CPU seconds, peak memory, output."""
    command = [sys.executable, "-m", "kit.cli", "prepare", "--data", str(data), "--cache", str(cache)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    busy, started = busy_seconds(), time.perf_counter()
    run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peaks, cpu = {}, {}  # per process: its high-water mark of resident memory, its CPU seconds

    def sample():  # the command's own figures come exactly from rusage below; this adds the processes it starts
        while run.poll() is None:
            for pid, (_, hwm, _, seconds) in process_tree(run.pid).items():
                peaks[pid] = max(peaks.get(pid, 0), hwm)
                if pid != run.pid:
                    cpu[pid] = seconds  # the last reading before it ends
            time.sleep(0.1)  # walking /proc costs a few ms of a core that kit prepare could use

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = run.communicate()
    wall = time.perf_counter() - started
    others = busy_seconds() - busy
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode:
        raise SystemExit(f"kit prepare failed with exit code {run.returncode}")
    total = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime + sum(cpu.values())
    peaks[run.pid] = max(peaks.get(run.pid, 0), after.ru_maxrss * 1024)  # (largest waited-for child: this one)
    in_run = float(re.search(r"in ([0-9.]+) s\.", output)[1])
    return Timing(wall, total, max(0.0, (others - total) / wall), in_run=in_run, peak_sum=sum(peaks.values()),
                  peak_one=max(peaks.values()), output=output.strip())


def float16_error(samples: Path) -> str:
    """Worst and RMS float16 error after centring on the nose and dividing by each axis' spread (std)."""
    worst, squares, count, jitter = 0.0, 0.0, 0, []
    for path in sorted((samples / "train_landmark_files").glob("*/*.parquet")):
        exact = pd.read_parquet(path, columns=["x", "y", "z"]).values.reshape(-1, N_LANDMARKS, 3)
        stored = exact.astype(np.float16).astype(np.float64)
        spread = np.nanstd(exact - exact[:, 1:2], axis=(0, 1))
        error = ((stored - stored[:, 1:2]) - (exact - exact[:, 1:2])) / spread
        worst = max(worst, float(np.nanmax(np.abs(error))))
        squares, count = squares + float(np.nansum(error ** 2)), count + int(np.isfinite(error).sum())
        if len(exact) > 1:  # MediaPipe's own noise: how far face points move between frames, same units
            face = (exact - exact[:, 1:2])[:, :OFFSET["left_hand"]] / spread
            jitter.append(float(np.nanmedian(np.abs(np.diff(face, axis=0)))))
    return (f"float16 error on the real samples, in units of landmark spread after nose-centring: max "
            f"{worst:.4f}, rms {np.sqrt(squares / count):.5f}; median frame-to-frame face movement "
            f"{min(jitter):.4f}..{max(jitter):.4f}")


def report(n: int, frames: int, base: Timing, kit: Timing, rerun: Timing) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    row = "{:<44} {:>8} {:>9} {:>12} {:>14}"
    lines = [row.format("", "files/s", "wall s", "CPU ms/file", "others' cores"),
             row.format("baseline: competition loader, 1 process", f"{n / base.wall:.0f}", f"{base.wall:.2f}",
                        f"{base.cpu / n * 1e3:.2f}", f"{base.others:.1f}"),
             row.format(f"kit prepare, fresh cache, {cores} cores: as run", f"{n / kit.wall:.0f}", f"{kit.wall:.2f}",
                        f"{kit.cpu / n * 1e3:.2f}", f"{kit.others:.1f}"),
             row.format("  once started (its own count)", f"{n / kit.in_run:.0f}", f"{kit.in_run:.2f}", "", ""),
             row.format("kit prepare re-run, nothing changed", "", f"{rerun.wall:.2f}", "", f"{rerun.others:.1f}")]
    as_run, started = base.wall / kit.wall, base.wall / kit.in_run
    per_core = base.cpu / kit.cpu
    lines.append(f"speed-up over the baseline: {as_run:.1f}x as run (interpreter start-up included), "
                 f"{started:.1f}x once started; target {TARGET:g}x: {'met' if started >= TARGET else 'NOT met'}")
    lines.append(f"CPU per file (kit's with its start-up): kit needs {1 / per_core:.2f}x the baseline's, so on "
                 f"{cores} cores free of other work kit could reach at most ~{cores * per_core:.1f}x")
    # The rate once started still includes the worker pool's start-up, so the extrapolation errs long.
    full = kit.wall - kit.in_run + FULL_SET * kit.in_run / n
    cache_gb = FULL_SET * frames / n * N_LANDMARKS * 3 * 2 / 1e9
    lines.append(f"full data set, {FULL_SET:,} files from the page cache: kit prepare ~{full / 60:.1f} min, "
                 f"baseline ~{FULL_SET * base.wall / n / 60:.1f} min; cache ~{cache_gb:.1f} GB of float16")
    lines.append(f"peak memory of kit prepare: at most {kit.peak_sum / 2**20:.0f} MiB over all its processes (each "
                 f"one's peak, shared pages counted in each), {kit.peak_one / 2**20:.0f} MiB in the largest one")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="files to generate (default 2000)")
    parser.add_argument("--workdir", type=Path, help="keep the generated files here and reuse them next time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        work = args.workdir or Path(tmp)
        data, cache = work / "data", work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        started = time.perf_counter()
        paths = generate(data, args.files)
        lengths = np.array([pq.read_metadata(p).num_rows // N_LANDMARKS for p in paths])
        size = sum(len(p.read_bytes()) for p in paths)  # also warms the page cache for every reader below
        print(f"{len(paths)} files, {lengths.sum():,} frames (mean {lengths.mean():.1f}, median "
              f"{np.median(lengths):.0f}, max {lengths.max()}), {size / 1e6:.0f} MB, ready in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        base = baseline(paths)
        kit = run_prepare(data, cache)
        rerun = run_prepare(data, cache)
        shutil.rmtree(cache, ignore_errors=True)
    print(kit.output)
    print(report(len(paths), int(lengths.sum()), base, kit, rerun))
    print(float16_error(SAMPLES))


if __name__ == "__main__":
    main()
