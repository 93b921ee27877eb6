"""`kit train`, `kit cv`, `kit config` and `kit models`: runs trained and their settings (kit.training, kit.config).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kit.cli.base import _base_config, _check_model_name
from kit.errors import KitError


def train(
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache written by kit prepare (default: cache, or "
                                         "the --from-cv run's)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory: config, folds, weights, metrics (default: "
                                       "runs/run; with --from-cv, that run, beside its folds)."),
    folds: Optional[int] = typer.Option(None, help="GroupKFold folds by participant: every signer is held out once "
                                        "(default 5)."),
    fold: Optional[list[int]] = typer.Option(None, help="Train only this fold (repeatable), e.g. --fold 0."),
    full: bool = typer.Option(False, "--full", help="Final fits on every signer, no fold held out (RUN/full0 ...); "
                              "the epoch count comes from --epochs or --from-cv."),
    from_cv: Optional[Path] = typer.Option(None, "--from-cv", help="With --full: epochs = rounded mean of this run's "
                                           "folds' best epochs; its config and cache unless given."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="With --full: N models, seeds train.seed+0..N-1 "
                                        "(default 1)."),
    member: Optional[list[int]] = typer.Option(None, "--member", help="With --full: train only full fit K of the "
                                               "--seeds (repeatable), e.g. one per machine."),
    epochs: Optional[int] = typer.Option(None, help="Shortcut for --set train.epochs=E."),
    model: Optional[str] = typer.Option(None, help="Shortcut for --set model.name=NAME (see kit models)."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON config to start from (e.g. a run's "
                                          "config.json)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Start from a winning recipe's full-data settings: "
                                         "llama26, conv1st, mlp80 (kit config --recipe NAME shows it)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key: section.key=value."),
    strategy: str = typer.Option("auto", help="auto | cpu | mirrored | tpu (auto: mirrored on several GPUs)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this killed run (folds, full fits) from "
                                          "its last epoch."),
    sweep: Optional[list[str]] = typer.Option(None, "--sweep", help="A grid of runs under --out (default runs/sweep): "
                                              "section.key=v1,v2 per setting (repeatable), one run per combination; "
                                              "re-run to resume."),
    track: Optional[str] = typer.Option(None, "--track", help="Record the run in MLflow: --track mlflow "
                                        "(MLFLOW_TRACKING_URI, else a local store in the run's parent/mlruns)."),
) -> None:
    """Train fold models on unseen-signer splits, keeping out-of-fold predictions, the best weights and metrics;
    or, with --full, final models on every signer for an epoch count that cross-validation chose.

    Example: kit train --cache cache --out runs/base --folds 5 --set train.epochs=60 --set train.mixup_alpha=0.5
    Example: kit train --cache cache --out runs/mlp --recipe mlp80
    Example: kit train --full --from-cv runs/base --seeds 3
    Example: kit train --full --from-cv runs/base --seeds 3 --member 2   (this machine's share: full2)
    Example: kit train --full --cache cache --out runs/final --epochs 40 --set train.precision=mixed_bfloat16
    Example: kit train --resume runs/base
    Example: kit train --cache cache --out runs/mix --sweep train.mixup_alpha=0,0.5 --sweep model.name=llama_small,mlp
    Example (kit\\[mlflow] extra): kit train --cache cache --out runs/base --track mlflow
    Example (GPU, kit\\[gpu] extra): KERAS_BACKEND=jax kit train --recipe llama26 --set train.precision=mixed_bfloat16
    """
    from kit import config as config_mod

    shortcuts = ([f"train.epochs={epochs}"] if epochs is not None else []) + (
        [f'model.name="{model}"'] if model else [])
    overrides = shortcuts + list(set_ or [])
    if resume is None:  # a bad --set, --config or model name fails here, in a moment, before TensorFlow loads
        _check_model_name(config_mod.apply_overrides(_base_config(config, recipe), overrides))
    if not sweep:  # a run another command writes: refused here too, in a moment, before TensorFlow loads
        from kit.runlock import check_free

        check_free(resume or out or (from_cv if full else None) or Path("runs/run"), "run")
    from kit.training import full as full_fits
    from kit.training import sweep as sweeps
    from kit.seeing import track as tracking
    from kit.training import resume as resuming
    from kit.training import train as training

    tracker = tracking.open_tracker(track)  # a bad --track or a missing MLflow stops here, not after training
    if sweep and (resume is not None or full):
        raise KitError("--sweep trains folds, and re-running the same --sweep command resumes it: drop "
                       + ("--resume" if resume is not None else "--full (full fits come after, per run)"))
    if resume is not None:
        given = {"--cache": cache, "--out": out, "--folds": folds, "--fold": fold, "--full": full or None,
                 "--from-cv": from_cv, "--seeds": seeds, "--member": member, "--epochs": epochs, "--model": model,
                 "--config": config, "--recipe": recipe, "--set": set_,
                 "--strategy": None if strategy == "auto" else strategy}
        changes = [name for name, value in given.items() if value not in (None, [])]
        with tracking.recording(tracker, resume):
            results = resuming.resume(resume, changes=changes)
    else:
        if full:
            if folds is not None or fold:
                raise KitError("--full trains on every signer: drop --folds/--fold (train folds and full fits "
                               "with two commands)")
            base = _base_config(config, recipe) if config or recipe else None
            plan = full_fits.plan_full(base, overrides, from_cv=from_cv, cache_dir=cache, run_dir=out)
            with tracking.recording(tracker, plan.run_dir):
                results = [full_fits.train_full(plan, seeds=1 if seeds is None else seeds, strategy=strategy,
                                                only=member or None)]
        else:
            if from_cv is not None or seeds is not None or member:
                raise KitError("--from-cv, --seeds and --member go with --full (folds are seeded train.seed + "
                               "fold)")
            cfg = config_mod.apply_overrides(_base_config(config, recipe), overrides)
            n_folds, cache_dir = 5 if folds is None else folds, cache or training.DEFAULT_CACHE
            if sweep:
                results = [sweeps.run_sweep(cfg, sweep, cache_dir, out or sweeps.DEFAULT_PARENT, n_folds=n_folds,
                                            only_folds=fold or None, strategy=strategy, tracker=tracker)]
            else:
                with tracking.recording(tracker, out or training.DEFAULT_RUN):
                    results = [training.train(cfg, cache_dir, out or training.DEFAULT_RUN, n_folds=n_folds,
                                              only_folds=fold or None, strategy=strategy)]
    for result in results:
        typer.echo(result)


def cv(run_dir: Path = typer.Argument(..., help="Run directory written by kit train.")) -> None:
    """Merge the folds present in a run (e.g. trained on several machines) into cv.json and report.md.

    Example: kit cv runs/base
    """
    from kit.training.cv import summarize

    typer.echo(summarize(run_dir))


def config(
    file: Optional[Path] = typer.Option(None, "--config", help="Start from this JSON config instead of the defaults."),
    recipe: Optional[str] = typer.Option(None, "--recipe",
                                         help="Start from a published recipe: llama26, conv1st, mlp80."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key: section.key=value."),
    as_json: bool = typer.Option(False, "--json", help="Print the resolved config as JSON (every key --set "
                                 "accepts), for kit train --config FILE."),
) -> None:
    """Show the training config kit train would use: each setting a recipe changes with its source (a notebook
    cell, a write-up line, or the kit's choice and why), the model's parameters and input channels, the other
    keys at the kit's defaults, and where the kit departs from the source.

    Example: kit config --recipe conv1st

    Example: kit config --json --set train.mixup_alpha=0.5 > my.json && kit train --config my.json
    """
    import json

    from kit import config as config_mod

    cfg = config_mod.apply_overrides(_base_config(file, recipe), list(set_ or []))
    if as_json:
        typer.echo(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        return
    from kit import quiet  # noqa: F401  (the model count loads TensorFlow: its start-up lines stay out)
    from kit.training.card import card

    typer.echo(card(cfg, recipe, list(set_ or [])))


def models(
    params: bool = typer.Option(False, "--params", help="Also build each model (loads TensorFlow: seconds) and "
                                "count its parameters at max_len 64."),
) -> None:
    """List the registered model names (for --model or --set model.name=...).

    Example: kit models
    Example: kit models --params
    """
    from kit.model_names import MODELS

    for name, what in MODELS.items():
        if params:
            from kit.models import create_model

            what += f"; {create_model(name, max_len=64, n_features=170).count_params():,} parameters"
        typer.echo(f"{name}: {what}")
