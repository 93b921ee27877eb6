"""`kit train --sweep`: a grid of runs, one setting changed at a time, under one parent folder.

`--sweep train.mixup_alpha=0,0.5 --sweep model.name=llama_small,mlp` trains the 4 combinations as separate runs,
PARENT/train.mixup_alpha=0,model.name=llama_small ... (each folder name says what it changes), on top of the
same base config (--config/--recipe/--set). Values are parsed as --set parses them (JSON when they are JSON, so
`model.overrides={"dim":64,"depth":2}` or a quoted string may hold commas). Every combination's config is checked
before anything trains. Re-running the same command is resuming it: a finished run is skipped, a half-finished
one continues through kit train's own resume (finished folds kept, a killed fold from its last epoch). Each run is
locked for the whole sweep (kit.runlock), so a second sweep over any of them is refused before it starts, while a
sweep of other settings may share the parent folder. It ends with the `kit runs` table of the sweep's runs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from kit import config as config_mod
from kit.seeing import track
from kit.config import Config
from kit.errors import KitError
from kit.progress import say
from kit.runlock import writing
from kit.seeing.runs import collect, render, value_text

DEFAULT_PARENT = Path("runs/sweep")
MAX_NAME = 200  # bytes of a folder name; file systems allow 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,-]")


@dataclass(frozen=True)
class SweepResult:
    parent: Path
    trained: list[Path]
    skipped: list[Path]
    table: str  # the kit runs table of the sweep's runs

    def __str__(self) -> str:
        return (f"sweep {self.parent}: {len(self.trained) + len(self.skipped)} runs ({len(self.trained)} trained, "
                f"{len(self.skipped)} already finished); kit runs {self.parent} --html FILE adds their curves\n"
                f"{self.table}")


def split_values(text: str) -> list[str]:
    """"0,0.5" -> ["0", "0.5"]; commas inside brackets, braces or double quotes do not split."""
    values, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char in "[{":
            depth += 1
        elif not quoted and char in "]}":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            values.append(text[start:i])
            start = i + 1
    return values + [text[start:]]


def parse_axes(items: list[str]) -> list[tuple[str, list[str]]]:
    """--sweep KEY=V1,V2 ... -> [(KEY, [V1, V2])], in the order given; a key twice or a value twice is an error."""
    axes: dict[str, list[str]] = {}
    for item in items:
        key, _, raw = item.partition("=")
        key = key.strip()
        values = [v.strip() for v in split_values(raw)] if raw.strip() else []
        if "." not in key or not values or "" in values:
            raise KitError(f"--sweep {item!r} must look like section.key=value1,value2, e.g. "
                           "--sweep train.mixup_alpha=0,0.5")
        if key in axes:
            raise KitError(f"--sweep {key} is given twice: list all its values once, e.g. {key}=a,b,c")
        parsed = [config_mod.parse_value(v) for v in values]
        if len({json.dumps(p, sort_keys=True) for p in parsed}) < len(parsed):
            raise KitError(f"--sweep {item!r} repeats a value")
        axes[key] = values
    return list(axes.items())


def point_name(point: list[tuple[str, str]]) -> str:
    """The folder of one combination: KEY=VALUE,KEY=VALUE with the values as --set reads them (0.50 -> 0.5,
    "mlp" -> mlp), quotes and spaces dropped, and characters a file name should not hold replaced by _."""
    text = ",".join(f"{key}={value_text(config_mod.parse_value(raw))}" for key, raw in point)
    name = re.sub("_+", "_", _UNSAFE.sub("_", re.sub(r'["\s]', "", text)))
    if len(name.encode()) > MAX_NAME:
        import hashlib

        name = name[: MAX_NAME - 9] + "~" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return name


def plan(base: Config, axes: list[tuple[str, list[str]]]) -> list[tuple[str, Config]]:
    """(folder name, config) of every combination, first axis slowest; every config is checked here."""
    points = []
    for values in itertools.product(*(vals for _, vals in axes)):
        point = list(zip((key for key, _ in axes), values))
        try:
            cfg = config_mod.apply_overrides(base, [f"{key}={raw}" for key, raw in point])
        except KitError as err:
            raise KitError(f"--sweep {','.join(f'{k}={v}' for k, v in point)}: {err}")
        points.append((point_name(point), cfg))
    return points


def finished(run_dir: Path, n_folds: int, only_folds: list[int] | None) -> bool:
    """A run whose asked-for folds all have their metrics.json and whose cv.json is written."""
    meta_path = run_dir / "run.json"
    if not meta_path.is_file() or not (run_dir / "cv.json").is_file():
        return False
    if json.loads(meta_path.read_text()).get("n_folds") != n_folds:
        return False
    wanted = range(n_folds) if only_folds is None else only_folds
    return all((run_dir / f"fold{k}" / "metrics.json").is_file() for k in wanted)


def run_sweep(base: Config, items: list[str], cache_dir: Path, parent: Path, n_folds: int = 5,
              only_folds: list[int] | None = None, strategy: str = "auto", tracker: str | None = None) -> SweepResult:
    """Train every combination of `items` (--sweep values) on top of `base` as PARENT/NAME; see the module doc."""
    from kit.training import train as training

    parent = Path(parent)
    points = plan(base, parse_axes(items))
    for name, cfg in points:  # a folder trained with another base config is not this sweep's: stop before training
        config_path = parent / name / "config.json"
        if config_path.is_file() and config_mod.load(config_path) != cfg:
            raise KitError(f"{parent / name} was trained with another config (the base --config/--recipe/--set "
                           f"changed?): give this sweep a new --out, or go back to the settings it ran with")
    with contextlib.ExitStack() as held:  # every run of the grid, before any is touched: a second sweep stops here
        for name, _ in points:
            held.enter_context(writing(parent / name, "kit train --sweep", "run"))
        trained, skipped = [], []
        for i, (name, cfg) in enumerate(points, 1):
            run_dir = parent / name
            if finished(run_dir, n_folds, only_folds):
                say(f"sweep {i}/{len(points)}: {run_dir} already finished, skipped")
                if tracker and not (run_dir / track.RECORD).is_file():  # trained before --track was given: record it
                    with track.recording(tracker, run_dir):
                        pass
                skipped.append(run_dir)
                continue
            say(f"sweep {i}/{len(points)}: {run_dir}")
            with track.recording(tracker, run_dir):
                say(str(training.train(cfg, cache_dir, run_dir, n_folds=n_folds, only_folds=only_folds,
                                       strategy=strategy)))
            trained.append(run_dir)
    return SweepResult(parent, trained, skipped, render(collect([parent / name for name, _ in points])))
