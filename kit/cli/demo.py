"""`kit demo`: the whole pipeline on synthetic signers (kit.demo).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path

import typer



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

    typer.echo(run_demo(out, epochs=epochs, seed=seed))
