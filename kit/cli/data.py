"""`kit synth` and `kit prepare`: a data set written or read into the training cache (kit.data).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kit.cli.base import _alias, _ids
from kit.errors import KitError


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
    typer.echo(summary)


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

    report = build_cache(
        data, cache, workers=workers, participants=_ids(participants), limit=limit, skip_bad=skip_bad
    )
    typer.echo(report)
