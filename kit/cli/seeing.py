"""`kit show`, `kit stats`, `kit report` and `kit runs`: data and runs shown (kit.seeing).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kit.cli.base import _alias, _base_config, _fail, _terminal_width
from kit.errors import KitError


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
    augment: Optional[int] = typer.Option(None, "--augment", help="Draw N augmented versions of one file beside it, "
                                          "as training augments it, and print what each augmentation drew."),
    config: Optional[Path] = typer.Option(None, "--config", help="With --augment: the augmentations of this JSON "
                                          "config (e.g. a run's config.json)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="With --augment: the augmentations of a recipe "
                                         "(llama26, conv1st, mlp80)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="With --augment: override a config key, e.g. "
                                             "train.affine_prob=0.75."),
) -> None:
    """Animate a sequence: face, hands and pose with their bones, frame number and hands in view.

    Example: kit show data/asl-signs/train_landmark_files/16069/100015657.parquet --out cloud.gif
    Example: kit show A.parquet B.parquet --model-view --run runs/base
    Example: kit show --cache cache --sequence-id 100015657
    Example: kit show my_sign.mp4 --overlay --out seen.mp4
    Example: kit show my_sign.parquet --overlay
    Example: kit show data/asl-signs/train_landmark_files/16069/100015657.parquet --augment 8 --recipe conv1st
    Example: kit show A.parquet --augment 200 --set train.spatial_mask_prob=0.5 --out masked.gif
    """
    from kit.seeing.show import show as run_show

    if augment is not None or config or recipe or set_:
        from kit import config as config_mod
        from kit.seeing.augmented import show_augment

        if augment is None:
            raise KitError("--config, --recipe and --set choose the augmentations of --augment N: add --augment")
        if len(parquet or []) != 1 or overlay or video or model_view or run or cache or sequence_id:
            raise KitError("--augment draws one landmark file (kit show FILE.parquet --augment N [--recipe NAME | "
                           "--config FILE] [--set KEY=V]); --overlay, --model-view, --run and --cache do not go with it")
        cfg = config_mod.apply_overrides(_base_config(config, recipe), list(set_ or []))
        typer.echo(show_augment(parquet[0], augment, cfg, out=out, fps=15.0 if fps is None else fps, dpi=dpi))
    elif overlay or video is not None:
        from kit.seeing.overlay import overlay as run_overlay

        if not overlay or len(parquet or []) != 1 or model_view or run or cache or sequence_id:
            raise KitError("--overlay draws one video, image, folder or capture (kit show FILE --overlay "
                           "[--video VIDEO]); --video goes with it, --model-view, --run and --cache do not")
        typer.echo(run_overlay(parquet[0], out=out, fps=fps, video=video))
    else:
        typer.echo(run_show(parquet or [], out=out, fps=15.0 if fps is None else fps, model_view=model_view,
                            run_dir=run, cache_dir=cache, sequence_ids=sequence_id or [], dpi=dpi))


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

    data_dir = _alias(data, data_dir, "--data", "a DATA_DIR argument", default=Path("data/asl-signs"))
    result = data_stats(data_dir, out_dir=out, cache_dir=cache, limit=limit)
    Console(highlight=False).print(*result.tables())
    typer.echo(result)
    if result.bad:  # everything readable is counted and plotted above; the exit status still says it was not all
        path, problem = result.bad[0]
        raise _fail(KitError(f"{path}: {problem} ({len(result.bad)} unreadable file(s) left out of the counts)"))


def report(run_dir: Path = typer.Argument(..., help="Run directory written by kit train.")) -> None:
    """Write RUN_DIR/report.html: training curves, accuracy per signer, confused signs, export gates, in one file.

    Example: kit report runs/base
    """
    from kit.seeing.report import write_report

    typer.echo(write_report(run_dir))


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

    found = collect(dirs or [DEFAULT_ROOT])
    page = write_html(found, html) if html else None
    typer.echo(to_json(found) if as_json else render(found, width=_terminal_width()))
    if page:
        typer.echo(f"wrote {page}", err=as_json)
