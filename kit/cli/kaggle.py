"""`kit fetch`, `kit submit` and `kit kaggle train|status|cancel`: everything that talks to Kaggle (kit.kaggle).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kit.cli.base import _alias, _base_config, _fail, _ids, KitTyper
from kit.errors import KitError


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

    dest = _alias(data, dest_old, "--data", "--dest", default=Path("data/asl-signs"))
    typer.echo(fetch_competition(dest, participants=_ids(participants), force=force))


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

    typer.echo(run_submit(target, message, dry_run=dry_run, wait=not no_wait, poll_seconds=poll, force=force))


kaggle_app = KitTyper(
    no_args_is_help=True,
    help="Train in Kaggle's own notebooks (T4 x2 or TPU v5e-8), where the data and free accelerators are.",
)


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
    from kit.runlock import check_free

    if resume or out or from_cv:  # another kit kaggle train following this run: refused before the imports
        check_free(resume or out or from_cv, "run")
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

    typer.echo(remote.status(run_dir))


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

    typer.echo(remote.cancel(run_dir, confirm=None if yes else ask))
