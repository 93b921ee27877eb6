"""A full-scale rehearsal of the whole pipeline on a competition-shaped synthetic set, stage by stage.

    python bench/fullscale.py                        # 3 % of the real shape (~2,830 sequences), ~1.5 min on 2 cores
    python bench/fullscale.py --fraction 1 --steps 20   # the real 94,477 sequences (~42 GB of parquet, ~12 GB
                                                        # cache), 20 training steps of the full data on a CPU
    python bench/fullscale.py --workdir /tmp/rehearsal --keep   # keep data, cache and run for a second look

Runs the real `kit` commands as subprocesses, as a user would:
  synth     kit synth --like-competition --fraction F (the 21 real signers with their real counts, 250 signs)
  prepare   kit prepare on all of it (default workers: one per core)
  train     kit train --recipe llama26 --fold 0 --set train.epochs=1: one epoch of fold 0, i.e. F of the steps of
            a full-data epoch, or with --steps N an epoch of N steps (train.steps_per_epoch) over all F of the data
  export    kit export RUN --top 1 --force (--force: a latency gate failing on a busy machine is reported, not fatal)
  evaluate  kit evaluate on fold 0's held-out signers, as the Kaggle scorer reads the files
For each stage it prints the wall time, the CPU time and the peak resident memory of the command's whole process
tree (worker processes included), read from /proc every 0.2 s (Linux only): the largest simultaneous sum, and how
much of it was anonymous memory (file pages of the memory-mapped cache count as resident but are reclaimable).
Targets: kit prepare <= 10 min on 2 cores for the full set (extrapolated linearly from F when F < 1), kit train
<= 7 GiB resident at full scale (below F = 1 extrapolated by adding the landmarks of the rest of the data, the
one part of its memory that grows with the data), and no stage above 12 GB resident (kit train keeps the
landmarks it reads in RAM, so its memory grows with F: only --fraction 1 tests this one).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from proctree import process_tree  # bench/, on sys.path as the script's folder

ROOT = Path(__file__).resolve().parents[1]
PREPARE_TARGET_S = 600.0  # kit prepare on the full data set, 2 cores
MEMORY_TARGET = 12 * 2**30  # bytes resident, any stage
TRAIN_TARGET = 7 * 2**30  # bytes resident while training at full scale: room left in a free notebook's 12.7 GB


@dataclass
class Stage:
    name: str
    wall: float = 0.0
    cpu: float = 0.0  # CPU seconds of the whole process tree
    peak: int = 0  # bytes: largest sum of resident memory over the tree at one sample
    peak_anon: int = 0  # bytes: largest sum of anonymous resident memory (heap, not file pages)
    output: str = ""


SUMMARY = {"train": "cross-validation", "export": "wrote "}  # the output line to show; default: the first


def run_stage(name: str, args: list[str], log: Path) -> Stage:
    """Run `python -m kit.cli ARGS`, sampling its process tree; exit with its log's tail if it fails."""
    stage = Stage(name)
    cpu: dict[int, float] = {}
    started = time.perf_counter()
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "kit.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=sink, text=True)

        def sample() -> None:
            while proc.poll() is None:
                now = process_tree(proc.pid)
                stage.peak = max(stage.peak, sum(use.rss for use in now.values()))
                stage.peak_anon = max(stage.peak_anon, sum(use.anon for use in now.values()))
                cpu.update({pid: use.cpu for pid, use in now.items()})  # last reading of each
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = proc.communicate()
        stage.wall = time.perf_counter() - started
        sampler.join()
    log.write_text(log.read_text() + stdout)
    stage.cpu = sum(cpu.values())
    stage.output = stdout.strip()
    if proc.returncode:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"{name} failed with exit code {proc.returncode}: kit {' '.join(args)}\n{tail}\n(log: {log})")
    lines = stage.output.splitlines() or [""]
    shown = next((line for line in lines if SUMMARY.get(name, "") in line), lines[0])
    print(f"{name:<9} {stage.wall:7.1f} s  {stage.peak / 2**30:5.2f} GiB  | {shown[:150]}", flush=True)
    return stage


def held_out(run: Path, fold: int = 0) -> list[int]:
    """The participants of `fold` in a run's folds.csv: the signers its model never saw."""
    folds = pd.read_csv(run / "folds.csv")
    return sorted(folds.loc[folds["fold"] == fold, "participant_id"].unique().tolist())


def train_steps(log: Path, steps: int = 0, batch: int = 128) -> str:
    """One epoch's steps: `steps`, or one pass from kit train's "fold 0: N training sequences" line (llama26's
    batch: 128)."""
    if steps:
        return f"{steps} steps of {batch} (--steps)"
    match = re.search(r"fold 0: (\d+) training sequences", log.read_text())
    return f"{math.ceil(int(match[1]) / batch)} steps of {batch}" if match else "steps unknown"


def landmark_bytes(cache: Path) -> int:
    """What kit train holds of this cache in RAM: every frame's resident landmarks (kit.training.pipeline.RESIDENT),
    float32, once (handed to tf.data without a copy)."""
    from kit.data.cache import open_cache
    from kit.training.pipeline import RESIDENT

    return int(open_cache(cache).lengths.sum()) * len(RESIDENT) * 3 * 4


def report(stages: list[Stage], fraction: float, n_sequences: int, steps: str, landmarks: int = 0) -> str:
    row = "{:<9} {:>9} {:>9} {:>10} {:>13} {:>13}"
    lines = [row.format("stage", "wall s", "CPU s", "files/s", "peak RSS GiB", "peak anon GiB")]
    for s in stages:
        rate = f"{n_sequences / s.wall:.0f}" if s.name in ("synth", "prepare") else ""
        lines.append(row.format(s.name, f"{s.wall:.1f}", f"{s.cpu:.1f}", rate, f"{s.peak / 2**30:.2f}",
                                f"{s.peak_anon / 2**30:.2f}"))
    by_name = {s.name: s for s in stages}
    lines.append(f"train: one epoch of fold 0 = {steps}, on {fraction:g} of the full data")
    cores = len(os.sched_getaffinity(0))
    scale = 1 / fraction
    for name in ("synth", "prepare"):
        s = by_name[name]
        lines.append(f"{name} at full scale (x{scale:.0f}, linear, start-up included so it errs long): "
                     f"~{s.wall * scale / 60:.1f} min on {cores} cores")
    prepare_full = by_name["prepare"].wall * scale
    lines.append(f"target kit prepare <= {PREPARE_TARGET_S / 60:.0f} min on 2 cores: "
                 f"{'met' if prepare_full <= PREPARE_TARGET_S else 'NOT met'} (~{prepare_full / 60:.1f} min"
                 f"{'' if fraction == 1 else ', extrapolated'}, {cores} cores here)")
    train = by_name["train"].peak
    if fraction < 1:  # only the landmarks grow with the data (the rest is the model, TF and tf.data's buffers)
        train += landmarks * (1 / fraction - 1)
    lines.append(f"target train <= {TRAIN_TARGET / 2**30:.0f} GiB resident at full scale: "
                 f"{'met' if train <= TRAIN_TARGET else 'NOT met'} ({train / 2**30:.2f} GiB"
                 + ("" if fraction == 1 else f", extrapolated: {by_name['train'].peak / 2**30:.2f} GiB at fraction "
                    f"{fraction:g} plus the landmarks of the rest, {landmarks / 2**30:.2f} GiB x {1 / fraction - 1:.2g}")
                 + ")")
    worst = max(stages, key=lambda s: s.peak)
    lines.append(f"target <= 12 GiB resident in every stage: {'met' if worst.peak <= MEMORY_TARGET else 'NOT met'} "
                 f"(largest: {worst.name}, {worst.peak / 2**30:.2f} GiB at fraction {fraction:g})"
                 + ("" if fraction == 1 else "; train holds the data in memory, so only --fraction 1 tests this"))
    return "\n".join(lines)


def main() -> None:
    from kit import quiet

    quiet.install()  # TF's start-up and converter logs off the terminal, as under kit's commands

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", type=float, default=0.03, help="share of the real shape (default 0.03)")
    parser.add_argument("--workdir", type=Path, help="folder for data, cache and run (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=0,
                        help="train this many steps (train.steps_per_epoch) instead of one pass over fold 0's data")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra kit train override, e.g. --set preprocess.max_len=32 (repeatable)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kit-fullscale-"))
    work.mkdir(parents=True, exist_ok=True)
    data, cache, run, logs = work / "data", work / "cache", work / "run", work / "logs"
    logs.mkdir(exist_ok=True)
    print(f"full-scale rehearsal at fraction {args.fraction:g} in {work} (logs in {logs})", flush=True)
    try:
        stages = [run_stage("synth", ["synth", "--like-competition", "--fraction", str(args.fraction),
                                      "--seed", str(args.seed), "--out", str(data)], logs / "synth.log")]
        n = len(pd.read_csv(data / "train.csv"))
        stages.append(run_stage("prepare", ["prepare", "--data", str(data), "--cache", str(cache)],
                                logs / "prepare.log"))
        shutil.rmtree(run, ignore_errors=True)  # a kept workdir: train afresh
        overrides = [f"--set={o}" for o in ["train.epochs=1", f"train.steps_per_epoch={args.steps}", *args.overrides]]
        stages.append(run_stage("train", ["train", "--cache", str(cache), "--out", str(run), "--recipe", "llama26",
                                          "--folds", "5", "--fold", "0", *overrides], logs / "train.log"))
        stages.append(run_stage("export", ["export", str(run), "--top", "1", "--force"], logs / "export.log"))
        signers = ",".join(map(str, held_out(run)))
        stages.append(run_stage("evaluate", ["evaluate", str(run / "export" / "submission.zip"), "--data",
                                             str(data), "--participants", signers], logs / "evaluate.log"))
        print(report(stages, args.fraction, n, train_steps(logs / "train.log", args.steps), landmark_bytes(cache)))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
