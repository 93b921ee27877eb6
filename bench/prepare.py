"""Benchmark `kit prepare` against the competition's own loader, and extrapolate to the full data set.

    python bench/prepare.py              # 2,000 generated files of realistic length
    python bench/prepare.py --files 500  # quicker

Writes files in the competition's exact format (all 7 columns, dictionary-encoded, snappy, missing hands as
nulls) into a temp folder, with lengths drawn like the real ones (median ~35 frames, a tail to a few hundred).
Then, on the same files, both warm in the page cache:
  baseline  the competition's loader, one file after another:
            pd.read_parquet(path, columns=["x","y","z"]).values.reshape(n, 543, 3).astype(np.float32)
  kit       `python -m kit.cli prepare` (validation, float16 cache, all cores), timed as a user runs it,
            with its peak memory (the largest process, and the sum over its process tree) and its CPU
            time, sampled from /proc every 20 ms (Linux only). CPU time per file is the figure to trust
            on a shared machine: wall times there depend on what else runs.
It also reports the float16 storage error on the real samples when ../shared is beside the checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing: python bench/prepare.py

from kit.landmarks import N_LANDMARKS, OFFSET, landmark_index_column, type_column  # noqa: E402

FULL_SET = 94_477
SAMPLES = ROOT.parent / "shared" / "data" / "islr-samples"


def realistic_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Frames per file: log-normal with median 35 and a tail to a few hundred, as in the competition data."""
    return np.clip(np.round(rng.lognormal(np.log(35), 0.65, n)), 2, 500).astype(int)


def competition_table(rng: np.random.Generator, n_frames: int, start: int) -> pa.Table:
    frame = np.repeat(np.arange(start, start + n_frames, dtype=np.int16), N_LANDMARKS)
    suffix = pa.array([f"-{t}-{i}" for t, i in zip(type_column(), landmark_index_column())] * n_frames)
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
    """A competition folder with `n_files` landmark files, train.csv and the real sign map."""
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
    columns = ["path", "participant_id", "sequence_id", "sign"]
    pd.DataFrame(rows, columns=columns).to_csv(data / "train.csv", index=False)
    (data / "sign_to_prediction_index_map.json").write_bytes(
        (ROOT / "kit" / "assets" / "sign_to_prediction_index_map.json").read_bytes())
    return paths


def baseline(paths: list[Path]) -> float:
    """Seconds for the competition's loader to read every file, one after another."""
    started = time.perf_counter()
    for path in paths:
        data = pd.read_parquet(path, columns=["x", "y", "z"])
        data.values.reshape(len(data) // N_LANDMARKS, N_LANDMARKS, 3).astype(np.float32)
    return time.perf_counter() - started


def process_tree(root_pid: int) -> dict[int, tuple[int, int, float]]:
    """{pid: (resident bytes, peak resident bytes, CPU seconds)} of `root_pid` and its descendants, from /proc.

    /proc rather than getrusage: the workers are children of multiprocessing's fork server, which nobody
    waits for, so RUSAGE_CHILDREN would miss them.
    """
    parents, stats = {}, {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            times = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry)] = int(fields["PPid"])
        kib = [int(fields.get(key, "0 kB").split()[0]) * 1024 for key in ("VmRSS", "VmHWM")]
        stats[int(entry)] = (kib[0], kib[1], (int(times[11]) + int(times[12])) / os.sysconf("SC_CLK_TCK"))
    tree = {}
    for pid in stats:
        ancestor = pid
        while ancestor != root_pid and ancestor in parents and ancestor > 1:
            ancestor = parents[ancestor]
        if ancestor == root_pid:
            tree[pid] = stats[pid]
    return tree


def run_prepare(data: Path, cache: Path) -> dict:
    """Run `python -m kit.cli prepare` (all cores): wall and CPU seconds, peak memory, its output."""
    command = [sys.executable, "-m", "kit.cli", "prepare", "--data", str(data), "--cache", str(cache)]
    started = time.perf_counter()
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_sum, peak_one, cpu = [0], [0], {}

    def sample():  # every 20 ms; CPU time is each process's last reading (the command's own comes from rusage)
        while run.poll() is None:
            tree = process_tree(run.pid)
            peak_sum[0] = max(peak_sum[0], sum(rss for rss, _, _ in tree.values()))
            peak_one[0] = max([peak_one[0]] + [hwm for _, hwm, _ in tree.values()])
            cpu.update({pid: seconds for pid, (_, _, seconds) in tree.items() if pid != run.pid})
            time.sleep(0.02)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = run.communicate()
    wall = time.perf_counter() - started
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode:
        raise SystemExit(f"kit prepare failed with exit code {run.returncode}")
    own = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    in_run = float(re.search(r"in ([0-9.]+) s\.", output).group(1))
    return {"wall": wall, "in_run": in_run, "cpu": own + sum(cpu.values()), "peak_sum": peak_sum[0],
            "peak_one": max(peak_one[0], after.ru_maxrss * 1024), "output": output.strip()}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="files to generate (default 2000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        data, cache = Path(tmp) / "data", Path(tmp) / "cache"
        started = time.perf_counter()
        paths = generate(data, args.files)
        lengths = np.array([pq.read_metadata(p).num_rows // N_LANDMARKS for p in paths])
        frames, size = int(lengths.sum()), sum(p.stat().st_size for p in paths)
        print(f"generated {len(paths)} files, {frames} frames (median {np.median(lengths):.0f}, max {lengths.max()}), "
              f"{size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s")
        cpu_before = time.process_time()
        base = baseline(paths)
        base_cpu = time.process_time() - cpu_before
        kit = run_prepare(data, cache)
        rerun = run_prepare(data, cache)
    n, cores = len(paths), os.cpu_count()
    per_file = kit["cpu"] / n
    print(kit["output"])
    print(f"baseline, the competition's loader in 1 process: {n / base:6.0f} files/s, {base_cpu / n * 1e3:.2f} ms CPU "
          "per file")
    print(f"kit prepare on {cores} cores (validation, float16): {n / kit['wall']:6.0f} files/s as run "
          f"({kit['wall']:.1f} s with start-up), {n / kit['in_run']:.0f} files/s once started, "
          f"{per_file * 1e3:.2f} ms CPU per file (all processes)")
    print(f"speed-up: {base / kit['wall']:.1f}x as run, {base / kit['in_run']:.1f}x once started; from CPU per file, "
          f"{base_cpu / n / per_file:.2f}x per core, so {cores * base_cpu / n / per_file:.1f}x on {cores} free cores")
    rate = n / kit["in_run"]
    print(f"full data set, {FULL_SET:,} files from the page cache: kit prepare ~{FULL_SET / rate / 60:.1f} min, "
          f"baseline ~{FULL_SET / (n / base) / 60:.1f} min; cache ~{FULL_SET * frames / n * 543 * 3 * 2 / 1e9:.1f} GB")
    print(f"re-run with nothing changed: {rerun['wall']:.1f} s")
    print(f"peak memory of kit prepare: {kit['peak_sum'] / 2**20:.0f} MiB summed over its processes, "
          f"{kit['peak_one'] / 2**20:.0f} MiB in the largest one")
    if SAMPLES.is_dir():
        print(float16_error(SAMPLES))


if __name__ == "__main__":
    main()
