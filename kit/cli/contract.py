"""`kit export`, `kit check`, `kit evaluate` and `kit predict`: the TFLite graph and its contract (kit.contract).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kit.cli.base import _alias, _fail, _ids
from kit.errors import KitError


def export(
    run_dir: Optional[Path] = typer.Argument(None, help="Run directory written by kit train."),
    models: Optional[list[Path]] = typer.Option(
        None, "--models", help="A fold or run directory to ensemble (repeatable; mixes runs and architectures)."),
    top: Optional[int] = typer.Option(None, help="Ensemble the N folds of RUN_DIR with the best validation "
                                      "accuracy (default 3), or its first N full fits (default: all of them)."),
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
    from kit.runlock import check_free

    if out or run_dir:  # another kit export writing the same folder: refused before TensorFlow loads
        check_free(out or run_dir / "export", "export")
    from kit.seeing import track as tracking
    from kit.contract.export import export as run_export

    tracker = tracking.open_tracker(track)
    with tracking.recording(tracker, run_dir or out, stage="export", export_dir=out):
        typer.echo(run_export(run_dir, models=models, out_dir=out, top=top, fp16=fp16, force=force,
                              max_mb=max_mb, budget_ms=budget_ms))


def check(model: Path = typer.Argument(..., help="A model.tflite or submission.zip (ours or anyone's).")) -> None:
    """Check any TFLite model against the Kaggle contract before uploading it (all gates but parity).

    Example: kit check submission.zip
    """
    from kit.contract.gates import check_model, failures
    from kit.contract.tflite import read_model

    gates = check_model(read_model(model))
    for gate in gates:
        typer.echo(gate)
    failed = failures(gates)
    if failed:
        raise _fail(KitError(f"{model}: gate {failed[0].name!r} failed: {failed[0].detail}"))


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

    typer.echo(run_evaluate(model, data, participants=_ids(participants), limit=limit))


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
    typer.echo(result.to_json() if as_json else result)
