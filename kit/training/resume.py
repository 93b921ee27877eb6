"""`kit train --resume`: continue a killed run, its folds (kit.training.train) and its full fits (kit.training.full).

Full fits are built on train's fold machinery (full imports train), so the one function that continues either kind
lives here, above both, and train never imports full back.
"""

from __future__ import annotations

from pathlib import Path

from kit import config as config_mod
from kit.errors import KitError
from kit.progress import say
from kit.runlock import writing
from kit.training.full import train_members
from kit.training.train import read_meta, train


def resume(run_dir: Path, changes: list[str] = ()) -> list:
    """Continue a killed run: finished folds and full fits are kept, an interrupted one restarts from its last
    epoch; returns the CVResult of the folds and/or the FullResult of the full fits.

    `changes` are the options given beside --resume: a resumed run keeps the settings it started with, so any of
    them is refused (never silently ignored), naming the command that trains with them instead."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "run.json"
    if not meta_path.is_file():
        raise KitError(f"{meta_path}: missing; --resume needs a run directory written by kit train")
    meta = read_meta(run_dir)
    if changes:
        raise KitError(f"--resume continues {run_dir} with the settings it started with, so {', '.join(changes)} "
                       f"would be ignored: drop {'it' if len(changes) == 1 else 'them'}, or train a new run from its "
                       f"config with {'it' if len(changes) == 1 else 'them'}: kit train --cache {meta['cache']} "
                       f"--config {run_dir / 'config.json'} --out NEW_RUN and those options")
    with writing(run_dir, "kit train --resume", "run"):  # never beside another writer of this run
        results = []
        if "n_folds" in meta:
            cfg = config_mod.load(run_dir / "config.json")
            say(f"resuming {run_dir}: folds {meta['folds']} of {meta['n_folds']}, cache {meta['cache']}")
            results.append(train(cfg, Path(meta["cache"]), run_dir, meta["n_folds"], meta["folds"],
                                 meta["strategy"]))
        if meta.get("full"):
            say(f"resuming {run_dir}: full fits {meta['full']}, cache {meta['cache']}")
            results.append(train_members(run_dir, Path(meta["cache"]), meta["full"], meta["strategy"]))
        return results
