"""Is the input pipeline ever what training waits on? Batches/s of the tf.data pipeline over the cache against
train steps/s of the default model, measured in the same run on this machine. Target: pipeline >= 5x the step.

    python bench/input_pipeline.py [--model llama_small] [--batches 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 5.0


def main() -> None:
    import keras

    from kit import config as config_mod
    from kit.cache import open_cache
    from kit.pipeline import make_dataset
    from kit.prepare import build_cache
    from kit.synth import synthesize
    from kit.train import _optimizer, build_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    overrides = args.overrides + ([f'model.name="{args.model}"'] if args.model else [])
    cfg = config_mod.apply_overrides(config_mod.Config(), overrides)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "data", n_signs=20, n_participants=8, per_sign=4, seed=0)
        build_cache(tmp / "data", tmp / "cache")
        cache = open_cache(tmp / "cache")
        rows = np.arange(len(cache))
        ds = make_dataset(cache, rows, cfg, training=True).repeat()

        iterator = iter(ds)
        for _ in range(3):  # warm up: tracing, thread pools
            next(iterator)
        start = time.perf_counter()
        for _ in range(args.batches):
            next(iterator)
        pipeline_rate = args.batches / (time.perf_counter() - start)

        model = build_model(cfg)
        model.compile(optimizer=_optimizer(cfg, 100),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        batches = [next(iterator) for _ in range(min(args.batches, 20) + 1)]
        model.train_on_batch(*batches[0])
        start = time.perf_counter()
        for x, y in batches[1:]:
            model.train_on_batch(x, y)
        step_rate = (len(batches) - 1) / (time.perf_counter() - start)

    ratio = pipeline_rate / step_rate
    print(f"\ninput pipeline: {pipeline_rate:.1f} batches/s ({pipeline_rate * cfg.train.batch_size:.0f} sequences/s, "
          f"batch {cfg.train.batch_size}, max_len {cfg.preprocess.max_len}, mirror {cfg.train.mirror_prob}, "
          f"mixup {cfg.train.mixup_alpha})")
    print(f"train step of {cfg.model.name}: {step_rate:.1f} steps/s")
    print(f"ratio pipeline / step: {ratio:.1f}x (target >= {TARGET:.0f}x: {'met' if ratio >= TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
