"""Can the input pipeline keep an accelerator busy? Sequences/s of the tf.data pipeline over the cache, on all
cores and on one, against two baselines measured in the same run on this machine:

- the generator-fed pipeline kit used before (one Python thread handing each cached sequence to tf.data, the
  same augmentations and preprocessing after it), the "today" of the issue that replaced it;
- train steps/s of the model on this machine (the pipeline must never be what training waits on).

Targets (2 cores): >= 5,000 sequences/s at max_len 64 with mirroring and mixup (>= 4.4x the generator
pipeline's 1,130 measured before), >= 1.7x from 1 core to 2, pipeline >= 5x the train step.
Each measurement runs in its own process pinned to its cores (os.sched_setaffinity), so TensorFlow sizes its
thread pools for them.

    python bench/training/input_pipeline.py [--model llama_small] [--batches 150] [--set train.mixup_alpha=0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_RATE, TARGET_SCALING, TARGET_STEP = 5000.0, 1.7, 5.0
MIXUP = ["train.mixup_alpha=0.5"]  # the target configuration: mirroring (default 0.5) and mixup


def measure(cache_dir: str, overrides: list[str], batches: int, what: str) -> dict:
    """In this process: sequences/s (and CPU time per sequence) of one pipeline, or train steps/s."""
    from kit import config as config_mod
    from kit.data.cache import open_cache
    from kit.training.pipeline import make_dataset

    cfg = config_mod.apply_overrides(config_mod.Config(), overrides)
    cache = open_cache(cache_dir)
    rows = np.arange(len(cache))
    if what == "generator":
        ds = generator_pipeline(cache, rows, cfg).repeat()
    else:
        ds = make_dataset(cache, rows, cfg, training=True)
    iterator = iter(ds)
    for _ in range(5):  # warm up: tracing, thread pools, autotuning
        next(iterator)
    if what == "step":
        return {"steps_per_s": train_steps(cfg, [next(iterator) for _ in range(min(batches, 20) + 1)])}
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = batches * cfg.train.batch_size
    return {"sequences_per_s": n / wall, "cpu_us_per_sequence": cpu / n * 1e6}


def train_steps(cfg, batches) -> float:
    import keras

    from kit.training.train import _optimizer, build_model

    model = build_model(cfg)
    model.compile(optimizer=_optimizer(cfg, 100), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.train_on_batch(*batches[0])
    start = time.perf_counter()
    for x, y in batches[1:]:
        model.train_on_batch(x, y)
    return (len(batches) - 1) / (time.perf_counter() - start)


def generator_pipeline(cache, indices, cfg):
    """The baseline: kit's former pipeline, a Python generator reading the cache into tf.data, then the same
    augmentations and preprocessing in a parallel map, batch and mixup."""
    import tensorflow as tf

    from kit.preprocessing import augment
    from kit.data.landmarks import N_CLASSES, N_LANDMARKS
    from kit.preprocessing.preprocess import preprocess

    rng = np.random.default_rng(cfg.train.seed)
    t, seed = cfg.train, tf.constant(cfg.train.seed, tf.int64)

    def rows():
        for i in rng.permutation(indices):
            yield cache.frames(int(i)), np.int32(cache.labels[i]), np.int64(i * 1000)

    signature = (tf.TensorSpec([None, N_LANDMARKS, 3], tf.float32), tf.TensorSpec([], tf.int32),
                 tf.TensorSpec([], tf.int64))

    def example(frames, label, draw):
        if t.mirror_prob > 0:
            frames, _ = augment.random_mirror(frames, t.mirror_prob, tf.stack([draw, seed]))
        features, mask = preprocess(frames, cfg.preprocess)
        return {"features": features, "mask": mask}, tf.one_hot(label, N_CLASSES)

    ds = tf.data.Dataset.from_generator(rows, output_signature=signature)
    ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(t.batch_size)
    if t.mixup_alpha > 0:
        ds = ds.enumerate().map(lambda step, batch: augment.mixup(*batch, t.mixup_alpha, tf.stack([step, seed])),
                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def run(cache_dir: Path, overrides: list[str], batches: int, what: str, cores: list[int]) -> dict:
    """`measure` in a fresh process pinned to `cores`."""
    code = ("import os, sys, json; os.sched_setaffinity(0, set(json.loads(sys.argv[1]))); "
            "sys.path.insert(0, sys.argv[2]); import input_pipeline as b; "
            "r = b.measure(sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]), sys.argv[6]); "
            "print('RESULT', json.dumps(r))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cores), str(Path(__file__).parent), str(cache_dir),
                          json.dumps(overrides), str(batches), what], capture_output=True, text=True, env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"measurement {what} on cores {cores} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    from kit import quiet

    quiet.install()  # TF's start-up and converter logs off the terminal, as under kit's commands

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    overrides = args.overrides + ([f'model.name="{args.model}"'] if args.model else [])

    from kit import config as config_mod
    from kit.data.prepare import build_cache
    from kit.data.synth import synthesize

    cfg = config_mod.apply_overrides(config_mod.Config(), overrides)
    mixed = config_mod.apply_overrides(cfg, MIXUP)
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "data", n_signs=20, n_participants=8, per_sign=8, seed=0)
        build_cache(tmp / "data", tmp / "cache")
        cache = tmp / "cache"
        default_all = run(cache, overrides, args.batches, "pipeline", cores)
        default_one = run(cache, overrides, args.batches, "pipeline", cores[:1])
        mixed_all = run(cache, overrides + MIXUP, args.batches, "pipeline", cores)
        mixed_one = run(cache, overrides + MIXUP, args.batches, "pipeline", cores[:1])
        baseline = run(cache, overrides + MIXUP, max(20, args.batches // 4), "generator", cores)
        step = run(cache, overrides, args.batches, "step", cores)["steps_per_s"]

    def line(result: dict, c, n_cores: int) -> str:
        rate = result["sequences_per_s"]
        return (f"input pipeline: {rate / c.train.batch_size:.1f} batches/s ({rate:.0f} sequences/s, "
                f"batch {c.train.batch_size}, max_len {c.preprocess.max_len}, mirror {c.train.mirror_prob}, "
                f"mixup {c.train.mixup_alpha}) on {n_cores} core{'s' if n_cores > 1 else ''}, "
                f"{result['cpu_us_per_sequence']:.0f} us CPU a sequence")

    print()
    print(line(default_all, cfg, len(cores)))
    print(line(default_one, cfg, 1))
    print(line(mixed_all, mixed, len(cores)))
    print(line(mixed_one, mixed, 1))
    rate, base = mixed_all["sequences_per_s"], baseline["sequences_per_s"]
    scaling = rate / mixed_one["sequences_per_s"]
    ratio = default_all["sequences_per_s"] / cfg.train.batch_size / step

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(f"baseline, the generator-fed pipeline (mirror, mixup 0.5): {base:.0f} sequences/s on {len(cores)} cores")
    print(f"with mirror and mixup: {rate:.0f} sequences/s (target >= {TARGET_RATE:.0f}: "
          f"{verdict(rate >= TARGET_RATE)}), {rate / base:.1f}x the baseline")
    print(f"scaling 1 -> {len(cores)} cores: {scaling:.2f}x (target >= {TARGET_SCALING}x: "
          f"{verdict(scaling >= TARGET_SCALING)})")
    print(f"train step of {cfg.model.name}: {step:.1f} steps/s; ratio pipeline / step: {ratio:.1f}x "
          f"(target >= {TARGET_STEP:.0f}x: {verdict(ratio >= TARGET_STEP)})")


if __name__ == "__main__":
    main()
