"""`kit train --full`: final fits on every signer, the models to submit once cross-validation chose the recipe.

A full fit holds no signer out, so nothing can pick its best epoch: the epoch count is given (`--epochs`) or
taken from a cross-validation run (`--from-cv RUN`: the rounded mean of its folds' best epochs), and the kept
weights are the last epoch's. `--seeds N` trains N of them with seeds train.seed + 0..N-1, as RUN/full0..full{N-1}
(layout in kit.training.train). They resume like folds (`kit train --resume RUN`); kit export prefers them to folds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from kit import config as config_mod
from kit.data import vocabulary
from kit.data.cache import open_cache
from kit.config import Config
from kit.training.distribute import check_batch
from kit.errors import KitError
from kit.progress import say
from kit import runfiles
from kit.runlock import writing
from kit.seeing.report import report_or_warn
from kit.training.train import (DEFAULT_CACHE, DEFAULT_RUN, build_model, check_cache, finished_epochs, fit_model,
                                read_meta, recipe_key, write_meta)


@dataclass(frozen=True)
class FullPlan:
    """What `kit train --full` will train: the config (with its epoch count), the cache and the run directory."""
    cfg: Config
    cache_dir: Path
    run_dir: Path
    epochs_note: str  # where the epoch count came from, said before training


@dataclass(frozen=True)
class FullResult:
    run_dir: Path
    members: dict  # member number -> its metrics.json

    def __str__(self) -> str:
        names = ", ".join(f"full{k} (seed {m['seed']})" for k, m in sorted(self.members.items()))
        first = next(iter(self.members.values()))
        return (f"{len(self.members)} full fit(s) on all {first['train_sequences']} sequences, every signer, "
                f"{_epochs(first['epochs'])}: {names}\n"
                f"not validated on unseen signers (the folds' cross-validation estimates them); "
                f"kit export {self.run_dir} ensembles them")


def epochs_from_cv(cv_run: Path) -> tuple[int, str]:
    """The rounded mean of the best epochs of the finished folds of `cv_run`, and a line that says so.

    The mean, not the max: it is the typical epoch at which a model of this recipe stopped improving on unseen
    signers, and a fold that peaked late by chance moves it by 1/K only.
    """
    found = sorted(Path(cv_run).glob("fold*/metrics.json"))
    best = {p.parent.name: runfiles.read_metrics(p.parent).get("best_epoch") for p in found}
    best = {name: e for name, e in best.items() if e}
    if not best:
        raise KitError(f"{cv_run}: no finished fold (fold*/metrics.json) to take the epoch count from; "
                       f"train folds there first (kit train --out {cv_run}) or give --epochs")
    epochs = max(1, math.floor(np.mean(list(best.values())) + 0.5))
    listed = ", ".join(f"{name} {e}" for name, e in best.items())
    return epochs, f"{_epochs(epochs)}: the rounded mean of the best epochs of the folds of {cv_run} ({listed})"


def plan_full(base: Config | None, overrides: list[str], from_cv: Path | None = None,
              cache_dir: Path | None = None, run_dir: Path | None = None) -> FullPlan:
    """Resolve `kit train --full`'s options: the config and epochs as `full_config` decides them; cache and run
    directory default to `from_cv`'s own (the fits go beside its folds), else to kit train's defaults.
    """
    if from_cv is not None:
        from_cv = Path(from_cv)
        meta = read_meta(from_cv)
        check_cv_run(from_cv)
        if not meta and cache_dir is None:  # folds pulled back from Kaggle kernels: their cache stayed there
            raise KitError(f"{from_cv} has no run.json naming its cache (its folds trained elsewhere): give --cache")
        cache_dir = Path(meta["cache"]) if cache_dir is None else cache_dir
        run_dir = from_cv if run_dir is None else run_dir
    cfg, note = full_config(base, overrides, from_cv)
    return FullPlan(cfg, Path(cache_dir or DEFAULT_CACHE), Path(run_dir or DEFAULT_RUN), note)


def check_cv_run(from_cv: Path) -> None:
    if not (Path(from_cv) / "config.json").is_file():
        raise KitError(f"{Path(from_cv) / 'config.json'}: missing; --from-cv needs a run directory written by kit "
                       "train")


def full_config(base: Config | None, overrides: list[str], from_cv: Path | None = None) -> tuple[Config, str]:
    """The config of full fits (here or in Kaggle kernels), and a line saying where its epoch count came from.

    Config: `base` (--config/--recipe), else the config.json of `from_cv` (the config travels with the weights),
    else the defaults; then `overrides`. Epochs: a train.epochs override (--epochs) wins, else `from_cv`'s folds
    decide; neither is an error.
    """
    cv_epochs = None
    if from_cv is not None:
        cv_epochs, cv_note = epochs_from_cv(Path(from_cv))
        base = config_mod.load(Path(from_cv) / "config.json") if base is None else base
    cfg = config_mod.apply_overrides(base or Config(), overrides)
    if any(item.split("=", 1)[0].strip() == "train.epochs" for item in overrides):
        note = f"{_epochs(cfg.train.epochs)}, as given" + (f" ({from_cv}'s folds suggest {cv_epochs})" if cv_epochs
                                                          else "")
    elif cv_epochs is not None:
        cfg, note = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=cv_epochs)), cv_note
    else:
        raise KitError("--full needs an epoch count, since no held-out signer can pick one: give --epochs E, "
                       "or --from-cv RUN to take the best epochs of RUN's folds")
    return cfg, note


def member_config(cfg: Config, member: int) -> Config:
    """Full fit `member`'s config: the plan's, with seed train.seed + member."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + member))


def train_full(plan: FullPlan, seeds: int = 1, strategy: str = "auto", only: list[int] | None = None) -> FullResult:
    """Train full fits 0..seeds-1 of `plan` (one already finished is kept), or only the members `only` of them (one
    machine's share), and write them into the run directory."""
    check_seeds(seeds, only)
    cfg, run_dir = plan.cfg, plan.run_dir
    build_model(cfg)  # fail fast on a bad model name or size, before any data is read
    check_batch(cfg.train.batch_size, strategy)  # and on a global batch the replicas cannot split
    signs = open_cache(plan.cache_dir).signs
    cfg = vocabulary.with_signs(cfg, signs, plan.cache_dir)  # one output per sign of the data's map
    with writing(run_dir, "kit train --full", "run"):  # one writer per run, also beside its folds
        meta = read_meta(run_dir)
        check_cache(run_dir, meta, plan.cache_dir)
        _check_fits_beside(run_dir, meta, cfg, seeds)
        say(f"full fits on every signer: {plan.epochs_note}")
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "config.json").is_file():  # beside folds, RUN/config.json stays theirs
            cfg.save(run_dir / "config.json")
        vocabulary.write_map(run_dir, signs)
        for k in range(seeds):  # every member's config first: a killed run resumes the ones not yet started too
            (run_dir / f"full{k}").mkdir(exist_ok=True)
            member_config(cfg, k).save(run_dir / f"full{k}" / "config.json")
        meta.update(cache=str(plan.cache_dir.resolve()), strategy=strategy,
                    full=sorted(set(meta.get("full", [])) | set(range(seeds))))
        write_meta(run_dir, meta)
        return train_members(run_dir, plan.cache_dir, sorted(set(only)) if only else list(range(seeds)), strategy)


def check_seeds(seeds: int, only: list[int] | None = None) -> None:
    """--seeds N is at least 1, and --member K names one of them."""
    if seeds < 1:
        raise KitError(f"--seeds {seeds}: train at least one model (--seeds 1)")
    bad = [k for k in only or [] if not 0 <= k < seeds]
    if bad:
        raise KitError(f"--member {bad[0]} is out of range: with --seeds {seeds} use 0..{seeds - 1}")


def _check_fits_beside(run_dir: Path, meta: dict, cfg: Config, seeds: int) -> None:
    """Full fits may join folds of the same recipe, and full fits of the same config; nothing else."""
    if "n_folds" in meta and recipe_key(config_mod.load(run_dir / "config.json")) != recipe_key(cfg):
        raise KitError(f"{run_dir}: its folds were trained with another config (beyond epochs and seed): give a "
                       f"new --out for these full fits, or drop --config/--recipe/--set to use the folds' config")
    for k in range(seeds):
        path = run_dir / f"full{k}" / "config.json"
        if path.is_file() and config_mod.load(path) != member_config(cfg, k):
            raise KitError(f"{path.parent} was trained with another config or epoch count: give a new --out, "
                           f"or continue it with kit train --resume {run_dir}")


def train_members(run_dir: Path, cache_dir: Path, members: list[int], strategy: str = "auto") -> FullResult:
    """Train the unfinished full fits `members` of `run_dir`, each from its own config.json; summarise them all."""

    with writing(run_dir, "kit train --full", "run"):
        cache = open_cache(cache_dir)
        for k in members:
            member_dir = run_dir / f"full{k}"
            if (member_dir / "metrics.json").is_file():
                say(f"full{k}: already finished ({member_dir / 'metrics.json'}), skipped")
                continue
            train_member(config_mod.load(member_dir / "config.json"), cache, k, member_dir, strategy)
        report_or_warn(run_dir)
        return FullResult(run_dir, {k: runfiles.read_metrics(run_dir / f"full{k}") for k in members})


def train_member(cfg: Config, cache, member: int, member_dir: Path, strategy: str = "auto") -> dict:
    """Train one full fit on every cached sequence for cfg.train.epochs; keeps the last epoch; returns its metrics."""
    keras.utils.set_random_seed(cfg.train.seed)
    done = finished_epochs(member_dir)
    every = np.arange(len(cache))
    signers = len(np.unique(cache.participant_ids))
    say(f"full{member}: {len(every)} training sequences from all {signers} signers, seed {cfg.train.seed}, "
        f"{_epochs(cfg.train.epochs)}" + (f"; resuming after epoch {done}" if done else ""))
    start = time.time()
    _, _, replicas = fit_model(cfg, cache, every, None, member_dir, done, strategy)
    metrics = {"member": member, "validated": False, "trained_on": "every signer", "epochs": cfg.train.epochs,
               "seed": cfg.train.seed, "train_sequences": len(every), "signers": signers,
               "seconds": round(time.time() - start, 1), "resumed_after_epoch": done, "devices": str(replicas)}
    runfiles.write_text(member_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    shutil.rmtree(member_dir / "backup", ignore_errors=True)  # only now: until metrics.json, a resume needs it
    say(f"full{member}: finished; {member_dir / 'model.weights.h5'} holds the last epoch")
    return metrics


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")
