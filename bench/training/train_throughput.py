"""Does training wait on its input? Training sequences/s of a model fed by the input pipeline against the same
model fed one batch repeated from memory (the most its step can do), in the same run, per precision.
Target: pipeline-fed >= 0.8x memory-fed. Meant for an accelerator (run it with KERAS_BACKEND=jax on a GPU);
on a CPU the step is slow and the ratio is trivially met, which proves only that the script works.

    KERAS_BACKEND=jax python bench/training/train_throughput.py --precision float32 --precision mixed_bfloat16
    python bench/training/train_throughput.py --steps 10 --sequences 640      # a CPU smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 0.8


class EpochClock:
    """Wall time of each epoch of a fit (the first one pays tracing and compilation)."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return Clock()


def rate(model, ds, steps: int, batch: int) -> float:
    """Sequences/s of `model.fit` over `steps` batches, after one epoch of warm-up."""
    clock = EpochClock()
    model.fit(ds, steps_per_epoch=steps, epochs=2, callbacks=[clock], verbose=0, shuffle=False)
    return steps * batch / clock.seconds[-1]


def main() -> None:
    from kit import quiet

    quiet.install()  # TF's start-up and converter logs off the terminal, as under kit's commands

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", action="append", default=[],
                        help="float32 | mixed_bfloat16 | mixed_float16 (repeatable; default: the first two)")
    parser.add_argument("--steps", type=int, default=200, help="timed train steps per measurement")
    parser.add_argument("--sequences", type=int, default=4000, help="synthetic sequences in the cache")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from kit import config as config_mod
    from kit.data.cache import open_cache
    from kit.training.devices import detect
    from kit.training.pipeline import make_dataset
    from kit.data.prepare import build_cache
    from kit.data.synth import synthesize
    from kit.training.train import compile_model

    base = config_mod.apply_overrides(config_mod.recipe("llama26"), args.overrides)
    print(detect())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        per_sign = max(1, args.sequences // (25 * 8))
        synthesize(tmp / "data", n_signs=25, n_participants=8, per_sign=per_sign, seed=0)
        build_cache(tmp / "data", tmp / "cache")
        cache = open_cache(tmp / "cache")
        rows = np.arange(len(cache))
        for precision in args.precision or ["float32", "mixed_bfloat16"]:
            cfg = config_mod.apply_overrides(base, [f'train.precision="{precision}"'])
            batch = cfg.train.batch_size
            piped = make_dataset(cache, rows, cfg, training=True)
            one = next(iter(piped))
            memory = tf.data.Dataset.from_tensors(one).repeat()
            fed = rate(compile_model(cfg, args.steps), piped, args.steps, batch)
            keras.utils.clear_session()
            ceiling = rate(compile_model(cfg, args.steps), memory, args.steps, batch)
            keras.utils.clear_session()
            results.append((precision, fed, ceiling))

    print(f"\n{base.model.name}, batch {base.train.batch_size}, max_len {base.preprocess.max_len}, "
          f"Keras backend {keras.backend.backend()}, {args.steps} timed steps")
    for precision, fed, ceiling in results:
        ratio = fed / ceiling
        print(f"{precision:>15}: pipeline-fed {fed:,.0f} sequences/s, memory-fed {ceiling:,.0f} sequences/s, "
              f"ratio {ratio:.2f} (target >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
