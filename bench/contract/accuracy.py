"""Accuracy on unseen signers: the default recipe against a simple baseline, on the same folds, in one run.

Data: `kit synth`, 30 signs x 8 signers x 4 repetitions. Folds: 4-fold GroupKFold by signer.
Baseline: logistic regression on time-pooled (mean and std over frames), head-centred x, y of both hands and
the lips. Recipe: `kit train` with the default config (or --model/--epochs/--set overrides).
Also prints training sequences per second of every registered model on this machine.

    python bench/contract/accuracy.py [--recipe mlp80] [--epochs 40] [--model llama_small] [--set train.mixup_alpha=0.5]
                             [--skip-speed]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

N_SIGNS, N_SIGNERS, PER_SIGN, N_FOLDS = 30, 8, 4, 4


def pooled_features(frames: np.ndarray) -> np.ndarray:
    """Mean and std over time of head-centred x, y of both hands and the lips (NaN ignored, 0 if never seen)."""
    from kit.data import landmarks as L

    points = list(L.LEFT_HAND) + list(L.RIGHT_HAND) + [L.OFFSET["face"] + i for i in L.LIPS_FACE]
    head = np.nanmean(frames[:, L.HEAD, :2], axis=0)
    xy = frames[:, points, :2] - head
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled = np.concatenate([np.nanmean(xy, axis=0).ravel(), np.nanstd(xy, axis=0).ravel()])
    return np.nan_to_num(pooled)


def baseline_accuracy(cache, folds: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.stack([pooled_features(cache.frames(i)) for i in range(len(cache))])
    y = cache.labels
    hits = np.zeros(len(y), bool)
    for k in range(N_FOLDS):
        train, val = folds != k, folds == k
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
        clf.fit(x[train], y[train])
        hits[val] = clf.predict(x[val]) == y[val]
    return float(hits.mean())


def training_speed(cache, cfg, steps: int = 6) -> dict[str, float]:
    """Training sequences per second of each registered model (default preprocessing and batch size)."""
    import dataclasses

    import keras

    from kit.config import RECIPES, recipe
    from kit.models import list_models
    from kit.training.pipeline import make_dataset
    from kit.training.train import _optimizer, build_model

    # A model whose recipe engineers features (the mlp) is timed on those features; the others on cfg's.
    own = {c.model.name: dataclasses.replace(c.preprocess, max_len=cfg.preprocess.max_len)
           for c in map(recipe, RECIPES) if c.model.name != "llama_small"}
    batches_for: dict = {}  # one set of batches per distinct preprocessing
    out = {}
    for name in list_models():
        pre = own.get(name, cfg.preprocess)
        mcfg = dataclasses.replace(cfg, preprocess=pre, model=dataclasses.replace(cfg.model, name=name, overrides={}))
        if pre not in batches_for:
            batches_for[pre] = list(make_dataset(cache, np.arange(len(cache)), mcfg, training=True).take(steps + 1))
        batches = batches_for[pre]
        model = build_model(mcfg)
        model.compile(optimizer=_optimizer(mcfg, 10), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        model.train_on_batch(*batches[0])  # compile and warm up
        start = time.perf_counter()
        for x, y in batches[1:]:
            model.train_on_batch(x, y)
        out[name] = steps * cfg.train.batch_size / (time.perf_counter() - start)
    return out


def main() -> None:
    from kit import quiet

    quiet.install()  # TF's start-up and converter logs off the terminal, as under kit's commands

    from kit import config as config_mod
    from kit.data.cache import open_cache
    from kit.data.folds import assign_folds
    from kit.data.prepare import build_cache
    from kit.data.synth import synthesize
    from kit.training.train import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--model")
    parser.add_argument("--recipe", help="start from a named recipe (llama26, conv1st, mlp80)")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    overrides = list(args.overrides)
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f'model.name="{args.model}"'] if args.model else []
    cfg = config_mod.apply_overrides(config_mod.recipe(args.recipe) if args.recipe else config_mod.Config(), overrides)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "data", n_signs=N_SIGNS, n_participants=N_SIGNERS, per_sign=PER_SIGN, seed=args.seed)
        build_cache(tmp / "data", tmp / "cache")
        cache = open_cache(tmp / "cache")
        folds = assign_folds(cache.participant_ids, N_FOLDS)
        start = time.time()
        base = baseline_accuracy(cache, folds)
        base_s = time.time() - start
        start = time.time()
        result = train(cfg, tmp / "cache", tmp / "run", n_folds=N_FOLDS)
        recipe_s = time.time() - start
        speed = {} if args.skip_speed else training_speed(cache, cfg)

    chance = 1 / N_SIGNS
    print(f"\n{N_SIGNS} signs x {N_SIGNERS} signers x {PER_SIGN}, {N_FOLDS}-fold GroupKFold by signer "
          f"(chance {chance:.3f})")
    print(f"baseline (logistic regression, time-pooled)  accuracy {base:.3f}  ({base_s:.0f} s)")
    print(f"recipe {args.recipe or 'kit defaults'} ({cfg.model.name}, {cfg.train.epochs} epochs, "
          f"{cfg.train.optimizer}, EMA {cfg.train.ema}, "
          f"mixup {cfg.train.mixup_alpha})  accuracy {result.oof_accuracy:.3f}  ({recipe_s:.0f} s)")
    print(f"ratio recipe / baseline: {result.oof_accuracy / base:.2f}x")
    for name, per_s in speed.items():
        print(f"training speed {name:24} {per_s:8.1f} sequences/s (batch {cfg.train.batch_size}, "
              f"max_len {cfg.preprocess.max_len})")


if __name__ == "__main__":
    main()
