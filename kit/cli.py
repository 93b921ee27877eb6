"""The `kit` command line: each command parses its options, calls one library function and reports.

Heavy imports (TensorFlow, the Kaggle client) happen inside the commands so that `kit --help` is instant; kit.quiet
keeps TensorFlow's start-up log lines off the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import typer.core

from kit import quiet
from kit.errors import KitError

quiet.install()  # before any command imports TensorFlow: its start-up chatter stays off the terminal

class KitCommand(typer.core.TyperCommand):
    """A command whose help reads as the README does: arguments by their metavar (RUN_DIR, never {run_dir}) in the
    usage line, and flags as flags (--dry-run, not --dry-run <bool>)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument) and param.metavar is None:
                param.metavar = param.name.upper()
            elif isinstance(param, typer.core.TyperOption) and param.is_flag:
                param.metavar = ""  # a flag takes no value: no type column

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument) and not param.hidden:
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class KitTyper(typer.Typer):
    """typer.Typer whose commands are KitCommands."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or KitCommand, **kwargs)


app = KitTyper(
    add_completion=False,
    no_args_is_help=True,
    help="From raw MediaPipe landmarks to a scored Kaggle asl-signs submission. Start with `kit demo`.",
)


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"Error: {err}", err=True)
    return typer.Exit(code=1)


def _alias(value, old, name: str, old_name: str, default=None):
    """An option given by its name or by its old spelling, kept hidden so that older commands still run; not both."""
    if value is not None and old is not None:
        raise KitError(f"{old_name} is the old spelling of {name}: give {name} only")
    return value if value is not None else old if old is not None else default


def _ids(text: Optional[str]) -> Optional[list[int]]:
    """Parse "16069,18796" into [16069, 18796]."""
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated participant ids like 16069,18796, got {text!r}")


def _check_model_name(cfg) -> None:
    """An unknown model.name, from the table kit models lists (no Keras import), as kit.models would refuse it."""
    from kit.model_names import MODELS

    if cfg.model.name not in MODELS:
        raise KitError(f"unknown model {cfg.model.name!r}; registered models: {', '.join(sorted(MODELS))}")


def _terminal_width() -> Optional[int]:
    """The terminal's columns (COLUMNS when set), or None when the output goes to a pipe or a file."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _base_config(file: Optional[Path], recipe: Optional[str]):
    """The config a command starts from: a JSON file, a named recipe, or the defaults (not both)."""
    from kit import config as config_mod

    if file and recipe:
        raise KitError("give --config or --recipe, not both (add --set overrides to either)")
    return config_mod.load(file) if file else config_mod.recipe(recipe) if recipe else config_mod.Config()


@app.command()
def synth(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder to write the data set into (competition "
                                        "layout); required."),
    out_old: Optional[Path] = typer.Option(None, "--out", hidden=True),  # the old spelling of --data
    signs: int = typer.Option(25, help="Number of signs (the first N of the real 250-sign map)."),
    signers: Optional[int] = typer.Option(None, "--signers", help="Number of synthetic signers (default 8)."),
    participants_old: Optional[int] = typer.Option(None, "--participants", hidden=True),  # old spelling of --signers
    per_sign: int = typer.Option(4, "--per-sign", help="Sequences per sign and signer."),
    seed: int = typer.Option(0, help="Random seed: the same seed writes the same files."),
    like_competition: bool = typer.Option(
        False, "--like-competition", help="The real data set's shape instead: 94,477 sequences of the 21 real "
        "signer ids with their real counts, 250 signs, real-like lengths (~42 GB); resumable."),
    fraction: float = typer.Option(
        1.0, help="With --like-competition: write only this share of every signer's sequences (a subset)."),
    counts: Optional[Path] = typer.Option(
        None, "--counts", help="With --like-competition: sequences per signer from this CSV's participant_id "
        "column (e.g. the real train.csv) instead of the built-in real counts."),
    workers: int = typer.Option(0, help="With --like-competition: worker processes (0: one per CPU core)."),
) -> None:
    """Write a synthetic data set in exactly the competition's layout (train.csv, parquet files, sign map).

    Example: kit synth --data data/synth --signs 25 --signers 8
    Example: kit synth --like-competition --fraction 0.05 --data data/rehearsal
    """
    try:
        out = _alias(data, out_old, "--data", "--out")
        participants = _alias(signers, participants_old, "--signers", "--participants", default=8)
        if out is None:
            raise KitError("give --data FOLDER, the folder to write the data set into (e.g. kit synth --data "
                           "data/synth)")
        if like_competition:
            from kit.data.rehearsal import counts_from_csv, synthesize_like_competition

            if (signs, participants, per_sign) != (25, 8, 4):
                raise KitError("--signs, --signers and --per-sign do not go with --like-competition, whose "
                               "shape is the real one; use --fraction for a smaller set")
            summary = synthesize_like_competition(out, fraction=fraction, seed=seed, workers=workers,
                                                  counts=counts_from_csv(counts) if counts else None)
        else:
            from kit.data.synth import synthesize

            if fraction != 1.0 or counts or workers:
                raise KitError("--fraction, --counts and --workers go with --like-competition")
            summary = synthesize(out, n_signs=signs, n_participants=participants, per_sign=per_sign, seed=seed)
    except KitError as err:
        raise _fail(err)
    typer.echo(summary)


@app.command()
def prepare(
    data: Path = typer.Option(Path("data/asl-signs"), "--data", help="Competition folder holding train.csv."),
    cache: Path = typer.Option(Path("cache"), "--cache", help="Folder for the training cache."),
    workers: int = typer.Option(0, help="Worker processes (0: one per CPU core)."),
    participants: Optional[str] = typer.Option(None, help="Only these signers, e.g. 16069,18796."),
    limit: Optional[int] = typer.Option(None, help="Only the first N rows of train.csv (after --participants)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip bad files and list them in bad_files.csv."),
) -> None:
    """Validate every landmark file in train.csv and cache it for training; re-runs only do new files.

    Example: kit prepare --data data/asl-signs --cache cache --participants 16069,18796
    """
    from kit.data.prepare import build_cache

    try:
        report = build_cache(
            data, cache, workers=workers, participants=_ids(participants), limit=limit, skip_bad=skip_bad
        )
    except KitError as err:
        raise _fail(err)
    typer.echo(report)


@app.command()
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

    try:
        shortcuts = ([f"train.epochs={epochs}"] if epochs is not None else []) + (
            [f'model.name="{model}"'] if model else [])
        overrides = shortcuts + list(set_ or [])
        if resume is None:  # a bad --set, --config or model name fails here, in a moment, before TensorFlow loads
            _check_model_name(config_mod.apply_overrides(_base_config(config, recipe), overrides))
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
    except KitError as err:
        raise _fail(err)
    for result in results:
        typer.echo(result)


@app.command()
def cv(run_dir: Path = typer.Argument(..., help="Run directory written by kit train.")) -> None:
    """Merge the folds present in a run (e.g. trained on several machines) into cv.json and report.md.

    Example: kit cv runs/base
    """
    from kit.training.cv import summarize

    try:
        typer.echo(summarize(run_dir))
    except KitError as err:
        raise _fail(err)


@app.command()
def config(
    file: Optional[Path] = typer.Option(None, "--config", help="Start from this JSON config instead of the defaults."),
    recipe: Optional[str] = typer.Option(None, "--recipe",
                                         help="Start from a winning recipe: llama26, conv1st, mlp80."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key: section.key=value."),
) -> None:
    """Print the training config that kit train would use (every key --set accepts), as JSON.

    Example: kit config --set train.mixup_alpha=0.5 > my.json && kit train --config my.json
    """
    import json

    from kit import config as config_mod

    try:
        cfg = config_mod.apply_overrides(_base_config(file, recipe), list(set_ or []))
    except KitError as err:
        raise _fail(err)
    typer.echo(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))


@app.command()
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


@app.command()
def export(
    run_dir: Optional[Path] = typer.Argument(None, help="Run directory written by kit train."),
    models: Optional[list[Path]] = typer.Option(
        None, "--models", help="A fold or run directory to ensemble (repeatable; mixes runs and architectures)."),
    top: int = typer.Option(3, help="Ensemble the N folds of RUN_DIR with the best validation accuracy."),
    fp16: bool = typer.Option(False, "--fp16", help="Store weights in float16 (half the size)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default RUN_DIR/export)."),
    force: bool = typer.Option(False, "--force", help="Write submission.zip even if a gate fails."),
    max_mb: float = typer.Option(40.0, "--max-mb", help="Size budget in MB (the competition allows 40)."),
    budget_ms: float = typer.Option(100.0, "--budget-ms", help="Latency budget: the measured mean x 1.5 (safety "
                                    "for Kaggle's CPU) must fit; says how many more such members would."),
    track: Optional[str] = typer.Option(None, "--track", help="Record the gates, size and latency in MLflow: "
                                        "--track mlflow (in the run's record from kit train --track mlflow)."),
) -> None:
    """Build model.tflite + submission.zip (one preprocessing step, N models averaged) and prove the Kaggle contract.

    Gates: signature, builtin ops a TFLite 2.9.1 runtime runs, size <= 40 MB, finite output on edge cases,
    latency (one thread, real sequence lengths) with the mean x 1.5 within --budget-ms, parity with the padded
    Keras models. Results go to export.json; the latency line says how many more such members would still fit.

    Example: kit export runs/base --top 3 --fp16
    Example: kit export runs/conv --budget-ms 60
    Example: kit export --models runs/llama/fold0 --models runs/conv --out exports/mix
    Example (kit\\[mlflow] extra): kit export runs/base --track mlflow
    """
    from kit.seeing import track as tracking
    from kit.contract.export import export as run_export

    try:
        tracker = tracking.open_tracker(track)
        with tracking.recording(tracker, run_dir or out, stage="export", export_dir=out):
            typer.echo(run_export(run_dir, models=models, out_dir=out, top=top, fp16=fp16, force=force,
                                  max_mb=max_mb, budget_ms=budget_ms))
    except KitError as err:
        raise _fail(err)


@app.command()
def check(model: Path = typer.Argument(..., help="A model.tflite or submission.zip (ours or anyone's).")) -> None:
    """Check any TFLite model against the Kaggle contract before uploading it (all gates but parity).

    Example: kit check submission.zip
    """
    from kit.contract.gates import check_model, failures
    from kit.contract.tflite import read_model

    try:
        gates = check_model(read_model(model))
    except KitError as err:
        raise _fail(err)
    for gate in gates:
        typer.echo(gate)
    failed = failures(gates)
    if failed:
        raise _fail(KitError(f"{model}: gate {failed[0].name!r} failed: {failed[0].detail}"))


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="A model.tflite or submission.zip (ours or anyone's)."),
    data: Path = typer.Option(Path("data/asl-signs"), "--data", help="Competition folder holding train.csv."),
    participants: Optional[str] = typer.Option(None, help="Only these signers, e.g. 16069,18796."),
    limit: Optional[int] = typer.Option(None, help="Only the first N sequences."),
) -> None:
    """Score a TFLite model as the competition's scorer does: accuracy, per-signer accuracy, latency, size.

    Example: kit evaluate runs/base/export/submission.zip --data data/asl-signs --participants 16069
    """
    from kit.contract.evaluate import evaluate as run_evaluate

    try:
        typer.echo(run_evaluate(model, data, participants=_ids(participants), limit=limit))
    except KitError as err:
        raise _fail(err)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for the demo's data, cache, run and submission."),
    epochs: int = typer.Option(30, help="Epochs per fold."),
    seed: int = typer.Option(0, help="Seed of the synthetic data and of training."),
) -> None:
    """The whole pipeline on built-in synthetic data: synth -> prepare -> train 3 folds -> export -> evaluate.

    Evaluation uses signers that no model saw. About 2-3 minutes on 2 CPU cores.

    Example: kit demo --out demo
    """
    from kit.demo import run_demo

    try:
        typer.echo(run_demo(out, epochs=epochs, seed=seed))
    except KitError as err:
        raise _fail(err)


@app.command()
def fetch(
    data: Optional[Path] = typer.Option(None, "--data", help="Folder for the competition data (default "
                                        "data/asl-signs)."),
    dest_old: Optional[Path] = typer.Option(None, "--dest", hidden=True),  # the old spelling of --data
    participants: Optional[str] = typer.Option(
        None, help="Only these signers' landmark files, e.g. 16069,18796 (a quick start); default: everything."
    ),
    force: bool = typer.Option(False, "--force", help="Download again what is already here."),
) -> None:
    """Download the asl-signs data with your Kaggle credentials: resumable, verified, unpacked safely.

    Example: kit fetch --data data/asl-signs --participants 16069,18796
    """
    from kit.kaggle.fetch import fetch_competition

    try:
        dest = _alias(data, dest_old, "--data", "--dest", default=Path("data/asl-signs"))
        typer.echo(fetch_competition(dest, participants=_ids(participants), force=force))
    except KitError as err:
        raise _fail(err)


@app.command()
def submit(
    target: Optional[Path] = typer.Argument(
        None, help="A run folder (uses its export/), a submission.zip or a model.tflite; "
        "default: the exported run under runs/ with the best CV."
    ),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Description of the submission."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Render the dataset and kernel, list what would be sent."),
    force: bool = typer.Option(False, "--force", help="Submit a run that is partial (folds missing) or whose CV is "
                               "not above chance."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Do what can be done now; run again later to go on."),
    poll: float = typer.Option(15.0, "--poll", help="Seconds between status checks while waiting."),
) -> None:
    """Upload the model, push the kernel that writes submission.zip, submit it and print the public score.

    Re-running continues where a failure stopped it, and after success sends nothing new.

    Prints the run's CV, its folds finished of planned and the models its export keeps before anything goes up.

    Example: kit submit runs/run --message "5 folds"
    Example: kit submit --dry-run   (which run would go up, and what it is worth)
    """
    from kit.kaggle.submit import submit as run_submit

    try:
        typer.echo(run_submit(target, message, dry_run=dry_run, wait=not no_wait, poll_seconds=poll, force=force))
    except KitError as err:
        raise _fail(err)


@app.command()
def show(
    parquet: Optional[list[Path]] = typer.Argument(None, help="One landmark file, or two to show side by side "
                                                   "(with --overlay: a video, image, folder of images or capture)."),
    out: Optional[Path] = typer.Option(None, "--out", help="FILE.gif or FILE.mp4 (default: <stem>.gif here)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frames per second of the animation (default 15; "
                                        "with --overlay, the video's or capture's own rate)."),
    model_view: bool = typer.Option(False, "--model-view", help="Draw what the model sees after preprocessing."),
    run: Optional[Path] = typer.Option(None, "--run", help="With --model-view: use this run's config.json."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Show a cached sequence (with --sequence-id)."),
    sequence_id: Optional[list[int]] = typer.Option(None, "--sequence-id", help="Cached sequence id (repeatable)."),
    dpi: int = typer.Option(80, "--dpi", help="Pixels per inch; each panel is 4 inches wide."),
    overlay: bool = typer.Option(False, "--overlay", help="Draw MediaPipe's landmarks over the video frames "
                                 "(kit capture's extra): of a video, image or folder, or of a capture's source."),
    video: Optional[Path] = typer.Option(None, "--video", help="With --overlay on a .parquet: the video to draw on "
                                         "(default: the source its capture names)."),
) -> None:
    """Animate a sequence: face, hands and pose with their bones, frame number and hands in view.

    Example: kit show data/asl-signs/train_landmark_files/16069/100015657.parquet --out cloud.gif
    Example: kit show A.parquet B.parquet --model-view --run runs/base
    Example: kit show --cache cache --sequence-id 100015657
    Example: kit show my_sign.mp4 --overlay --out seen.mp4
    Example: kit show my_sign.parquet --overlay
    """
    from kit.seeing.show import show as run_show

    try:
        if overlay or video is not None:
            from kit.seeing.overlay import overlay as run_overlay

            if not overlay or len(parquet or []) != 1 or model_view or run or cache or sequence_id:
                raise KitError("--overlay draws one video, image, folder or capture (kit show FILE --overlay "
                               "[--video VIDEO]); --video goes with it, --model-view, --run and --cache do not")
            typer.echo(run_overlay(parquet[0], out=out, fps=fps, video=video))
        else:
            typer.echo(run_show(parquet or [], out=out, fps=15.0 if fps is None else fps, model_view=model_view,
                                run_dir=run, cache_dir=cache, sequence_ids=sequence_id or [], dpi=dpi))
    except KitError as err:
        raise _fail(err)


@app.command()
def capture(
    source: Optional[Path] = typer.Argument(None, help="A video file, a folder of images (the frames of one "
                                            "recording, in name order) or an image."),
    out: Optional[Path] = typer.Option(None, "--out", help="The landmark file to write: FILE.parquet."),
    webcam: Optional[int] = typer.Option(None, "--webcam", help="Record camera N instead (0: the first); stop "
                                         "with Ctrl-C or --seconds."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="With --webcam: stop after this many seconds."),
    fps: float = typer.Option(30.0, "--fps", help="Resample a video or webcam to this rate: 30 is the "
                              "competition's; 0 keeps every source frame."),
    data: Optional[Path] = typer.Option(None, "--data", help="Instead of --out: add the recording to this "
                                        "competition-layout folder (with --participant and --sign)."),
    participant: Optional[int] = typer.Option(None, "--participant", help="With --data: the signer's id."),
    sign: Optional[str] = typer.Option(None, "--sign", help="With --data: the sign recorded, from the sign map."),
    vocabulary: Optional[str] = typer.Option(None, "--vocabulary", help="With --data: 'own' collects signs of your "
                                             "own (the folder's map grows with each new sign; models get one "
                                             "output per sign), 'competition' the 250 signs. Default: the folder's "
                                             "map decides; a new folder is competition."),
) -> None:
    """Track your own signing with MediaPipe Holistic into a competition landmark file (kit\\[capture] extra).

    Frames where MediaPipe finds no pose are dropped (the competition's files have one in every frame); frames with
    a pose but no face are kept with NaN face points, as in the competition's files.

    Example: kit capture my_sign.mp4 --out my_sign.parquet
    Example: kit capture --webcam 0 --seconds 3 --out me.parquet
    Example: kit capture cloud.mp4 --data data/mine --participant 90001 --sign cloud && kit prepare --data data/mine
    Example: kit capture wave.mp4 --data data/own --participant 1 --sign wave --vocabulary own
    """
    from kit.capture.holistic import capture as run_capture
    from kit.capture.holistic import open_any

    try:
        typer.echo(run_capture(open_any(source, webcam, seconds), out=out, fps=fps, data=data,
                               participant=participant, sign=sign, vocabulary=vocabulary))
    except KitError as err:
        raise _fail(err)


@app.command()
def predict(
    model: Path = typer.Argument(..., help="A model.tflite or submission.zip (ours or anyone's)."),
    source: Optional[Path] = typer.Argument(None, help="A landmark .parquet, or a video, image or folder of images "
                                            "(tracked as kit capture does)."),
    webcam: Optional[int] = typer.Option(None, "--webcam", help="Record camera N instead; stop with Ctrl-C or "
                                         "--seconds."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="With --webcam: stop after this many seconds."),
    fps: float = typer.Option(30.0, "--fps", help="Resample a video or webcam to this rate (0: every frame)."),
    signs: Optional[int] = typer.Option(None, "--signs", help="How many signs to list, most likely first "
                                        "(default 5)."),
    top_old: Optional[int] = typer.Option(None, "--top", hidden=True),  # old spelling of --signs (--top is export's)
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Name the sign in one recording: the model's top signs with their probabilities, as the scorer runs it.

    Example: kit predict runs/base/export/submission.zip my_sign.mp4
    Example: kit predict model.tflite data/asl-signs/train_landmark_files/16069/100015657.parquet --json
    """
    from kit.contract.predict import predict as run_predict

    try:
        if source is None and webcam is None:
            raise KitError("give a SOURCE (a landmark .parquet, a video, an image or a folder of images) or "
                           "--webcam N")
        if source is not None and source.suffix.lower() == ".parquet" and webcam is None and seconds is None:
            what = source
        else:
            from kit.capture.holistic import open_any

            what = open_any(source, webcam, seconds)
        top = _alias(signs, top_old, "--signs", "--top", default=5)
        result = run_predict(model, what, top=top, fps=fps)
    except KitError as err:
        raise _fail(err)
    typer.echo(result.to_json() if as_json else result)


@app.command()
def stats(
    data: Optional[Path] = typer.Option(None, "--data", help="Competition folder holding train.csv and "
                                        "train_landmark_files/ (default data/asl-signs)."),
    data_dir: Optional[Path] = typer.Argument(None, hidden=True),  # the old spelling of --data: a positional
    out: Path = typer.Option(Path("stats"), "--out", help="Folder for the PNG plots, here beside the command (a "
                             "data folder may be read-only)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Read lengths and missing hands from this cache."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N rows of train.csv."),
) -> None:
    """Count the data: sequences per sign and participant, lengths, missing hands per participant, with plots.

    Example: kit stats --data data/asl-signs --cache cache --out stats
    """
    from rich.console import Console

    from kit.seeing.stats import data_stats

    try:
        data_dir = _alias(data, data_dir, "--data", "a DATA_DIR argument", default=Path("data/asl-signs"))
        result = data_stats(data_dir, out_dir=out, cache_dir=cache, limit=limit)
    except KitError as err:
        raise _fail(err)
    Console(highlight=False).print(*result.tables())
    typer.echo(result)
    if result.bad:  # everything readable is counted and plotted above; the exit status still says it was not all
        path, problem = result.bad[0]
        raise _fail(KitError(f"{path}: {problem} ({len(result.bad)} unreadable file(s) left out of the counts)"))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="Run directory written by kit train.")) -> None:
    """Write RUN_DIR/report.html: training curves, accuracy per signer, confused signs, export gates, in one file.

    Example: kit report runs/base
    """
    from kit.seeing.report import write_report

    try:
        typer.echo(write_report(run_dir))
    except KitError as err:
        raise _fail(err)


@app.command()
def runs(
    dirs: Optional[list[Path]] = typer.Argument(None, help="Run directories or folders of runs (default: runs)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained page: the table and "
                                        "every run's validation curves overlaid."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON (for scripts) instead of the table."),
) -> None:
    """Compare runs, best CV first: recipe, model, the config keys that differ, CV accuracy ± its fold spread, best
    epochs, train time, exported size and latency; half-finished runs say how far they got.

    Example: kit runs
    Example: kit runs runs/sweep runs/base --html runs.html
    Example: kit runs --json | jq '.[0].cv_accuracy'
    """
    from kit.seeing.runs import DEFAULT_ROOT, collect, render, to_json, write_html

    try:
        found = collect(dirs or [DEFAULT_ROOT])
        page = write_html(found, html) if html else None
    except KitError as err:
        raise _fail(err)
    typer.echo(to_json(found) if as_json else render(found, width=_terminal_width()))
    if page:
        typer.echo(f"wrote {page}", err=as_json)


kaggle_app = KitTyper(
    no_args_is_help=True,
    help="Train in Kaggle's own notebooks (T4 x2 or TPU v5e-8), where the data and free accelerators are.",
)
app.add_typer(kaggle_app, name="kaggle")


@kaggle_app.command("train")
def kaggle_train(
    out: Optional[Path] = typer.Option(None, "--out", help="Local run directory the folds come back into (default: "
                                       "runs/run)."),
    folds: int = typer.Option(5, help="GroupKFold folds by participant: every signer is held out once."),
    fold: Optional[list[int]] = typer.Option(None, help="Train only this fold (repeatable), e.g. --fold 0."),
    full: bool = typer.Option(False, "--full", help="Final fits on every signer instead of folds (RUN/full0 ...); "
                              "epochs from --epochs or --from-cv."),
    from_cv: Optional[Path] = typer.Option(None, "--from-cv", help="With --full: epochs = rounded mean of this run's "
                                           "folds' best epochs; its config, and its folder as --out."),
    seeds: int = typer.Option(1, "--seeds", help="With --full: N models, seeds train.seed+0..N-1, one kernel each "
                              "as --parallel allows."),
    epochs: Optional[int] = typer.Option(None, help="Shortcut for --set train.epochs=E."),
    model: Optional[str] = typer.Option(None, help="Shortcut for --set model.name=NAME (see kit models)."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON config to start from."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Start from a winning recipe: llama26, conv1st, "
                                         "mlp80."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config key: section.key=value."),
    accelerator: str = typer.Option("t4", help="t4 (T4 x2, 12 h a session, TensorFlow on both GPUs) or tpu "
                                    "(TPU v5e-8, 9 h a session, JAX)."),
    parallel: Optional[int] = typer.Option(None, help="Kernels running at once (default: as many as Kaggle allows, "
                                           "2 on t4, 1 on tpu)."),
    per_kernel: Optional[int] = typer.Option(None, "--folds-per-kernel", help="Folds each kernel trains one after "
                                             "the other (default: as few as lets every kernel run at once)."),
    backend: Optional[str] = typer.Option(None, help="Keras backend in the kernel: tensorflow or jax (default: "
                                          "tensorflow on t4, jax on tpu)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run's Kaggle training with the "
                                          "settings it started with."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Render the wheel dataset and the kernels, list what "
                                 "would be sent; send nothing."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Push and download what can be now; run again later."),
    poll: float = typer.Option(60.0, "--poll", help="Seconds between status checks while waiting."),
) -> None:
    """Train folds in Kaggle kernels and stream each finished fold into a local run for kit cv / export / submit.

    The kit goes up as a wheel in a private dataset (a new version only when the code changed); one kernel per
    group of folds prepares the competition's data and trains there; finished folds come back verified. A re-run
    (or --resume RUN) continues where anything stopped and never starts a second session of the same folds.

    Example: kit kaggle train --out runs/k5 --recipe llama26 --folds 5
    Example: kit kaggle train --out runs/tpu --accelerator tpu --set train.precision=mixed_bfloat16
    Example: kit kaggle train --full --from-cv runs/k5 --seeds 2
    Example: kit kaggle train --resume runs/k5
    """
    from kit import config as config_mod
    from kit.kaggle import api as kaggle_api
    from kit.kaggle import plan as kaggle_plan
    from kit.kaggle import train as remote

    try:
        creds = kaggle_api.find_credentials()
        owner = creds.username if creds and creds.username else None
        owner = owner or kaggle_plan.OFFLINE_OWNER
        if resume is not None:
            if config or recipe or set_ or epochs is not None or model or fold or out or from_cv:
                raise KitError("--resume continues a run with the settings it started with: drop the other options "
                               "(but --full, to resume its full fits)")
            plan = kaggle_plan.plan_from_state(resume, owner, "full" if full else "fold")
        else:
            from kit.training.train import build_model

            overrides = ([f"train.epochs={epochs}"] if epochs is not None else []) + (
                [f'model.name="{model}"'] if model else []) + list(set_ or [])
            if full:
                if fold:
                    raise KitError("--full trains on every signer: drop --fold (train folds and full fits with two "
                                   "commands)")
                base = _base_config(config, recipe) if config or recipe else None
                plan, note = kaggle_plan.make_full_plan(base, overrides, out, owner, seeds=seeds, from_cv=from_cv,
                                                        accelerator=accelerator, parallel=parallel,
                                                        per_kernel=per_kernel, backend=backend)
                typer.echo(f"full fits on every signer: {note}", err=True)
            else:
                if from_cv is not None or seeds != 1:
                    raise KitError("--from-cv and --seeds go with --full (folds are seeded train.seed + fold)")
                cfg = config_mod.apply_overrides(_base_config(config, recipe), overrides)
                plan = kaggle_plan.make_plan(cfg, out or Path("runs/run"), owner, n_folds=folds,
                                             only_folds=fold or None, accelerator=accelerator, parallel=parallel,
                                             per_kernel=per_kernel, backend=backend)
            build_model(plan.cfg)  # a bad model name or size fails here, not hours later on Kaggle
        typer.echo(remote.train_on_kaggle(plan, dry_run=dry_run, wait=not no_wait, poll_seconds=poll))
    except KitError as err:
        raise _fail(err)
    except KeyboardInterrupt:  # everything done so far is in the state file; the kernels run on without us
        resume = f"kit kaggle train --resume {plan.run_dir}" + (" --full" if plan.kind == "full" else "")
        typer.echo(f"stopped waiting; the pushed kernels keep running on Kaggle: kit kaggle status {plan.run_dir} "
                   f"shows them, {resume} follows them and downloads what finished, kit kaggle cancel "
                   f"{plan.run_dir} stops them", err=True)
        raise typer.Exit(code=130)


@kaggle_app.command("status")
def kaggle_status(run_dir: Path = typer.Argument(..., help="A run started with kit kaggle train.")) -> None:
    """Each kernel of the run: its folds, state and time since the push; and your weekly GPU/TPU quota.

    Example: kit kaggle status runs/k5
    """
    from kit.kaggle import train as remote

    try:
        typer.echo(remote.status(run_dir))
    except KitError as err:
        raise _fail(err)


@kaggle_app.command("cancel")
def kaggle_cancel(run_dir: Path = typer.Argument(..., help="A run started with kit kaggle train."),
                  yes: bool = typer.Option(False, "--yes", help="Delete without asking (for scripts).")) -> None:
    """Stop the run's queued and running kernels (by deleting them, which is how Kaggle stops a session).

    Lists them first with the folds that only their sessions hold (a deleted session hands over nothing) and asks.
    Downloaded folds stay; kit kaggle train --resume RUN pushes the cancelled ones again.

    Example: kit kaggle cancel runs/k5
    Example: kit kaggle cancel runs/k5 --yes
    """
    from kit.kaggle import train as remote

    def ask(listing: str) -> bool:
        typer.echo(listing, err=True)
        try:
            return typer.confirm("Delete these kernels?", default=False, err=True)
        except typer.Abort:  # no answer (stdin closed): nothing is deleted
            return False

    try:
        typer.echo(remote.cancel(run_dir, confirm=None if yes else ask))
    except KitError as err:
        raise _fail(err)


if __name__ == "__main__":  # `python -m kit.cli ...`, as the resume test runs it
    app()
