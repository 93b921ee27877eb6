"""`kit runs`: every run at a glance, best first: what each one changed, what it scored, what it cost.

A run is a folder that kit train wrote (layout in kit.training.train): trained here, pulled back from Kaggle kernels (of
RUN/kaggle/ only state.json is read: the fold count and the folds still out there), or folds trained on several
machines and merged with kit cv. Everything is read from the files a run leaves (config.json, run.json,
fold*/metrics.json, cv.json, export/export.json, fold*/history.csv for the curves); nothing imports TensorFlow,
so a table of a hundred runs takes a moment. A half-finished run (a fold or full fit without its metrics.json:
killed, or still training) is listed with how far it got, never skipped and never an error.

The "changes" of a run are the config keys whose values are not the same in every listed run: in a sweep, exactly
the swept keys. A run listed alone shows the keys in which it differs from its recipe (the defaults, most often). The "recipe" is the named starting point (the defaults or a recipe of kit.config.RECIPES) that the
run's config is nearest to, counted in differing keys, since a config.json does not record how it was made.
"""

from __future__ import annotations

import functools
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import config as config_mod
from kit.config import flatten
from kit.errors import KitError
from kit.data.landmarks import N_CLASSES
from kit import runfiles
from kit.runfiles import Damaged
from kit.runlock import holder
from kit.seeing.report import judged_latency

DEFAULT_ROOT = Path("runs")
# Folders inside or beside runs that are never runs themselves (MLflow's local store sits beside the runs).
NOT_RUNS = frozenset({"mlruns", "export", "kaggle", "tensorboard", "backup"})
KAGGLE_STATE = Path("kaggle") / "state.json"  # kit kaggle train's progress (kit.kaggle.plan.state_path)
KAGGLE_FULL_STATE = Path("kaggle") / "full" / "state.json"  # the same for kit kaggle train --full
MAX_DEPTH = 3  # ROOT/sweep/point is depth 2: deeper folders are not searched for runs
HEADER = ["#", "run", "recipe", "model", "changes", "CV accuracy", "folds", "best epochs", "train time", "size",
          "latency", "state"]


@dataclass
class Run:
    """What one run directory holds, summarised; `changes` is filled by `collect` against the other runs."""
    path: Path
    name: str
    config: dict[str, Any]  # the resolved config, flattened to dotted keys (model overrides as model.KEY)
    n_folds: int | None  # from run.json (or folds.csv, or RUN/kaggle/state.json); None when none is there
    folds: dict[int, dict]  # finished folds: their metrics.json
    full: dict[int, dict]  # finished full fits: their metrics.json
    unfinished: dict[str, str]  # "fold1" -> "epoch 3 of 40": folds and full fits without metrics.json
    cv_accuracy: float | None
    export: dict | None  # export_summary of RUN/export/export.json
    notes: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    on_kaggle: dict[str, str] = field(default_factory=dict)  # "folds 3,4" -> "running": kernels not yet back
    writer: str | None = None  # "kit train, PID 4321": the command writing the run now (kit.runlock), if any

    @property
    def recipe(self) -> str:
        return nearest_recipe(self.config) if self.config else "-"

    @property
    def model(self) -> str:
        """The model's name, and its number of signs when it is your own vocabulary (kit/data/vocabulary.py)."""
        name, n = str(self.config.get("model.name", "-")), self.config.get("model.n_classes", N_CLASSES)
        return name if n == N_CLASSES else f"{name}, {n} signs"

    @property
    def fold_accuracy(self) -> dict[int, float]:
        return {k: float(m["val_accuracy"]) for k, m in sorted(self.folds.items())}

    @property
    def fold_std(self) -> float | None:
        """The spread of the folds' accuracies (sample standard deviation); None under two folds."""
        values = list(self.fold_accuracy.values())
        return statistics.stdev(values) if len(values) > 1 else None

    @property
    def best_epochs(self) -> dict[int, int]:
        return {k: int(m["best_epoch"]) for k, m in sorted(self.folds.items()) if m.get("best_epoch")}

    @property
    def train_seconds(self) -> float:
        """Training time of the finished folds and full fits, added up (on however many machines they ran)."""
        return float(sum(m.get("seconds") or 0 for m in [*self.folds.values(), *self.full.values()]))

    @property
    def devices(self) -> str:
        """What the finished folds and full fits trained on ("8 x tpu", "2 x gpu", "cpu"), as metrics.json says;
        several when the run's parts trained on different machines, "" for runs from before kit recorded it."""
        parts = [*self.folds.values(), *self.full.values()]
        return ", ".join(sorted({m["devices"] for m in parts if m.get("devices")}))

    @property
    def state(self) -> str:
        if self.unfinished:
            where = ", ".join(f"{name} at {progress}" for name, progress in self.unfinished.items())
            state = f"{'being written' if self.writer else 'unfinished'}: {where}"
        elif self.writer:
            state = "being written"
        elif self.on_kaggle:
            state = "on Kaggle: " + ", ".join(f"{folds} {status}" for folds, status in self.on_kaggle.items())
        elif self.n_folds and len(self.folds) < self.n_folds:
            state = f"partial: {len(self.folds)} of {self.n_folds} folds"
        elif not self.folds:
            state = "full fits only" if self.full else "not started"
        else:
            state = "done"
        if self.folds and self.full:
            state += f", {len(self.full)} full fit" + ("s" if len(self.full) > 1 else "")
        if self.export and not self.export["passed"]:
            state += f"; export failed ({', '.join(self.export['failed']) or 'gates'})"
        return state + (f" ({self.writer})" if self.writer else "")

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "state": self.state, "recipe": self.recipe,
                "model": self.model, "changes": self.changes, "cv_accuracy": self.cv_accuracy,
                "fold_accuracy": {str(k): v for k, v in self.fold_accuracy.items()}, "fold_std": self.fold_std,
                "n_folds": self.n_folds, "folds_finished": len(self.folds),
                "best_epochs": {str(k): v for k, v in self.best_epochs.items()}, "full_fits": len(self.full),
                "train_seconds": self.train_seconds, "devices": self.devices, "unfinished": self.unfinished, "export": self.export,
                "notes": self.notes, "on_kaggle": self.on_kaggle, "writer": self.writer,
                "mlflow": _json(self.path / "mlflow.json", []),  # kit.seeing.track.RECORD
                "config": self.config}


def collect(roots: list[Path]) -> list[Run]:
    """Every run under `roots` (each a run directory or a folder of runs, sweeps included), best CV first, runs
    without a CV last; each with the config keys that set it apart from the others."""
    found: dict[Path, tuple[Path, str]] = {}  # a run reached from two roots is listed once
    for root in map(Path, roots):
        if not root.is_dir():
            raise KitError(f"{root}: no such folder; give run directories or folders of runs (kit train --out)")
        for path in find_runs(root):
            name = root.name if path == root else str(path.relative_to(root))
            found.setdefault(path.resolve(), (path, f"{root.name}/{name}" if len(roots) > 1 and path != root else name))
    if not found:
        raise KitError(f"{', '.join(map(str, roots))}: no run directory here (one holds fold*/ or full*/ "
                       "written by kit train --out DIR)")
    runs = [read_run(path, name) for path, name in found.values()]
    changed = changed_keys([r.config for r in runs if r.config])
    for run in runs:
        if run.config and len(runs) == 1:  # alone, a run's changes are against its starting point (recipe column)
            start = _starting_points()[run.recipe]
            run.changes = {k: run.config.get(k, "-") for k in changed_keys([run.config, start])
                           if k in run.config and k != "model.name"}  # the model column shows the name
        elif run.config:
            run.changes = {key: run.config.get(key, "-") for key in changed}
    return sorted(runs, key=lambda r: (r.cv_accuracy is None, -(r.cv_accuracy or 0.0), r.name))


def is_run(path: Path) -> bool:
    return ((path / "run.json").is_file() or (path / "cv.json").is_file() or (path / KAGGLE_STATE).is_file()
            or (path / KAGGLE_FULL_STATE).is_file()
            or any(d.name[4:].isdigit() for d in path.glob("fold*")) or any(_numbered(path, "full")))


def find_runs(root: Path, depth: int = 0) -> list[Path]:
    """`root` if it is a run, else the runs below it (not below a run, nor in NOT_RUNS or hidden folders)."""
    if is_run(root):
        return [root]
    if depth >= MAX_DEPTH:
        return []
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if child.name not in NOT_RUNS and not child.name.startswith("."):
            found += find_runs(child, depth + 1)
    return found


def read_run(path: Path, name: str | None = None) -> Run:
    """Summarise one run directory from its files; unreadable or missing pieces become notes, never errors."""
    path = Path(path)
    notes: list[str] = []
    meta = _json(path / "run.json", notes) or {}
    folds, full, unfinished = {}, {}, {}
    for kind, finished in (("fold", folds), ("full", full)):
        for d in _numbered(path, kind):
            metrics = _json(d / "metrics.json", notes)
            if metrics is not None and (kind == "full" or "val_accuracy" in metrics):
                finished[int(d.name[4:])] = metrics
            elif (d / "metrics.json").is_file():
                unfinished[d.name] = "its end (metrics.json damaged)"
            else:
                unfinished[d.name] = _progress(d, notes)
    # the fold count: run.json's (kit train), folds.csv's, or that of kit kaggle train's state
    kaggle = _json(path / KAGGLE_STATE, notes) or {}
    n_folds = meta.get("n_folds") or _folds_in_csv(path / "folds.csv") or kaggle.get("n_folds")
    run = Run(path, name or path.name, _read_config(path, notes), n_folds, folds, full, unfinished, None,
              export_summary(path / "export" / "export.json", notes), notes)
    full_kaggle = _json(path / KAGGLE_FULL_STATE, notes) or {}
    run.on_kaggle = {f"{what} {','.join(map(str, g['folds']))}": g.get("status", "?")
                     for what, state, done in (("folds", kaggle, folds), ("full fits", full_kaggle, full))
                     for g in state.get("groups", {}).values()
                     if g.get("status") != "done" and any(k not in done for k in g.get("folds", []))}
    if run.on_kaggle:
        notes.append(f"see kit kaggle status {path}; kit kaggle train --resume {path} brings finished folds back")
    run.cv_accuracy = _cv_accuracy(run, _json(path / "cv.json", notes))
    writer = holder(path)
    if writer:
        run.writer = f"{writer.command}, PID {writer.pid}"
        notes.append(f"still being written by {writer}: its numbers are those of the moment")
    elif unfinished:
        notes.append(f"continue it with kit train --resume {path}")
    return run


def export_summary(path: Path, notes: list[str] | None = None) -> dict | None:
    """The numbers of an export.json: size, latency (with the kernels the scorer's runtime would use, as the
    latency gate judged it), parity, the gates' verdicts."""
    info = _json(path, notes if notes is not None else [])
    if info is None:
        return None
    gates = {g.get("name"): g for g in info.get("gates", [])}
    _, latency = judged_latency(gates.get("latency", {}))
    return {"size_bytes": info.get("size_bytes"), "size_mb": (info.get("size_bytes") or 0) / 1e6,
            "latency_mean_ms": latency.get("mean_ms"), "latency_p95_ms": latency.get("p95_ms"),
            "parity_max_abs_diff": gates.get("parity", {}).get("data", {}).get("max_abs_diff"),
            "fp16": bool(info.get("fp16")), "passed": bool(info.get("passed")), "models": len(info.get("models", [])),
            "gates": {name: bool(g.get("ok")) for name, g in gates.items()},
            "failed": [name for name, g in gates.items() if not g.get("ok")]}


def changed_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in every config (a key some lack counts), in sorted order."""
    keys = sorted(set().union(*configs)) if configs else []
    return [k for k in keys if len({json.dumps(c.get(k, "-"), sort_keys=True) for c in configs}) > 1]


@functools.cache
def _starting_points() -> dict[str, dict[str, Any]]:
    points = {"defaults": flatten(config_mod.Config().to_dict())}
    points.update({name: flatten(config_mod.recipe(name).to_dict()) for name in config_mod.RECIPES})
    return points


def nearest_recipe(config: dict[str, Any]) -> str:
    """The defaults or the recipe from which `config` differs in the fewest keys (ties: the defaults, then the
    recipes in kit.config's order)."""
    def distance(point: dict[str, Any]) -> int:
        return sum(config.get(k, "-") != point.get(k, "-") for k in set(point) | set(config))

    points = _starting_points()
    return min(points, key=lambda name: distance(points[name]))


def value_text(value: Any) -> str:
    """A config value as --set writes it: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def row(rank: int, run: Run) -> list[str]:
    """The table's cells for one run, as text (the terminal table and the HTML page show the same)."""
    accuracy = "-" if run.cv_accuracy is None else f"{run.cv_accuracy:.4f}"
    if run.fold_std is not None:
        accuracy += f" ± {run.fold_std:.4f}"
    folds = f"{len(run.folds)}/{run.n_folds}" if run.n_folds else str(len(run.folds) or "-")
    export = run.export
    return [str(rank), run.name, run.recipe, run.model,
            "\n".join(f"{k}={value_text(v)}" for k, v in run.changes.items()) or "-",
            accuracy, folds, " ".join(map(str, run.best_epochs.values())) or "-",
            duration(run.train_seconds) + (f" on {run.devices}" if run.devices else "") if run.folds or run.full else "-",
            f"{export['size_mb']:.2f} MB" + (" fp16" if export["fp16"] else "") if export else "-",
            f"{export['latency_mean_ms']:.2f} ms" if export and export["latency_mean_ms"] is not None else "-",
            run.state]


def duration(seconds: float) -> str:
    """42s, 3m05s, 2h07m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# Columns a narrow terminal drops first, in this order; the rest wrap ("changes" and "state" over several lines).
DROPPABLE = ("best epochs", "train time", "recipe", "#", "latency", "size")
WRAPPING = ("changes", "state")


def render(runs: list[Run], width: int | None = None) -> str:
    """The table as text with each run's notes below it. Without `width` (a pipe, a script), as wide as it needs,
    one line per run (greppable); in a terminal of `width` columns, the least needed columns are left out (said
    below the table) and "changes" and "state" wrap, so that 80 columns stay readable."""
    columns = list(HEADER)
    cells = [row(rank, run) for rank, run in enumerate(runs, 1)]
    lines = _table(columns, cells, width)
    dropped = []
    if width is not None:
        for column in DROPPABLE:
            if all(len(line) <= width and "…" not in line for line in lines):  # fits, nothing cut short
                break
            dropped.append(column)
            columns.remove(column)
            lines = _table(columns, cells, width)
    notes = [f"  {run.name}: {note}" for run in runs for note in run.notes]
    if dropped:
        notes.append(f"  (left out to fit {width} columns: {', '.join(dropped)}; kit runs --json has them all)")
    if width is not None:  # notes wrap like the table
        import textwrap

        notes = [part for note in notes for part in textwrap.wrap(note, width, subsequent_indent="    ",
                                                                   break_on_hyphens=False)]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


def _table(columns: list[str], cells: list[list[str]], width: int | None) -> list[str]:
    """`columns` of the table as text lines: one line per run, or wrapped to `width`."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in ("#", "folds", "size", "latency") else "left",
                         no_wrap=width is None or column not in WRAPPING)
    for row_cells in cells:
        by_name = dict(zip(HEADER, row_cells))
        table.add_row(*(by_name[c] if width is not None else by_name[c].replace("\n", " ") for c in columns))
    out = io.StringIO()
    console = Console(file=out, width=width or 100_000, color_system=None, highlight=False, emoji=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()).strip("\n").splitlines()


def to_json(runs: list[Run]) -> str:
    return json.dumps([run.to_dict() for run in runs], indent=2)


def write_html(runs: list[Run], out: Path) -> Path:
    """One self-contained page: the table, then the validation curves of every run overlaid (mean over its
    folds per epoch, the band from the lowest to the highest fold), and the runs' notes."""
    from kit.seeing.report import _CSS, _e, _table

    rows = [[_e(cell).replace("\n", "<br>") for cell in row(rank, run)] for rank, run in enumerate(runs, 1)]
    body = [f"<h1>Runs: {len(runs)}</h1>",
            "<p class='note'>Best cross-validation accuracy on unseen signers first (± the spread of the folds). "
            "Changes: the config keys that are not the same in every run listed.</p>",
            _table(HEADER, rows, raw=True), "<h2>Validation curves</h2>", _curves(runs)]
    notes = [f"<li>{_e(run.name)}: {_e(note)}</li>" for run in runs for note in run.notes]
    if notes:
        body += ["<h2>Notes</h2>", f"<ul>{''.join(notes)}</ul>"]
    body.append("<p class='note'>" + "<br>".join(f"{_e(run.name)}: {_e(run.path.resolve())}" for run in runs) + "</p>")
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>kit runs</title>"
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def validation_curves(run: Run) -> dict[str, tuple[list[int], list[float], list[float], list[float]]]:
    """Per validation metric: epochs, and the mean, lowest and highest over the folds that reached each epoch
    (finished or not)."""
    from kit.seeing.report import read_history

    per_fold = []
    for d in _numbered(run.path, "fold"):
        if not (d / "history.csv").is_file():
            continue
        try:
            per_fold.append(read_history(d / "history.csv"))
        except Damaged as err:
            run.notes.append(f"{d.name}/history.csv: damaged ({err.problem}): {err.fix}")
        except OSError as err:
            run.notes.append(f"{d.name}/history.csv: unreadable ({err})")
    curves = {}
    for key in ("val_accuracy", "val_loss"):
        columns = [h[key] for h in per_fold if h.get(key)]
        if not columns:
            continue
        epochs = list(range(1, max(map(len, columns)) + 1))
        at = [[c[e - 1] for c in columns if len(c) >= e and c[e - 1] == c[e - 1]] for e in epochs]  # NaN != NaN
        epochs, at = [e for e, v in zip(epochs, at) if v], [v for v in at if v]
        curves[key] = (epochs, [statistics.fmean(v) for v in at], [min(v) for v in at], [max(v) for v in at])
    return curves


def _curves(runs: list[Run]) -> str:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kit.seeing.report import _img

    curves = {f"{rank}. {run.name}": validation_curves(run) for rank, run in enumerate(runs, 1)}
    curves = {label: c for label, c in curves.items() if c}
    if not curves:
        return "<p class='note'>No validation history (fold*/history.csv) in these runs.</p>"
    ncol = 2 if max(map(len, curves)) > 40 else 3
    legend_rows = -(-len(curves) // ncol)
    fig = Figure(figsize=(11, 3.6 + 0.25 * legend_rows))
    grid = fig.add_gridspec(2, 2, height_ratios=[3.6, 0.25 * legend_rows + 0.05])
    axes = {key: fig.add_subplot(grid[0, i]) for i, key in enumerate(("val_accuracy", "val_loss"))}
    colors = matplotlib.colormaps["tab10" if len(curves) <= 10 else "tab20"]
    for i, (label, run_curves) in enumerate(curves.items()):
        color = colors(i % colors.N)
        for key, (epochs, mean, low, high) in run_curves.items():
            ax = axes[key]
            ax.plot(epochs, mean, color=color, label=label, marker="." if len(epochs) < 30 else None)
            if low != high:
                ax.fill_between(epochs, low, high, color=color, alpha=0.12, linewidth=0)
    for key, ax in axes.items():
        ax.set_title(f"validation {key[4:]}, held-out signers", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend = fig.add_subplot(grid[1, :])
    legend.axis("off")
    handles = {h.get_label(): h for ax in axes.values() for h in ax.get_lines()}
    legend.legend(list(handles.values()), list(handles), loc="upper left", ncol=ncol, fontsize=8, frameon=False)
    return ("<p class='note'>Each run's mean over its folds per epoch (numbered as in the table); the band spans "
            "its lowest to its highest fold.</p>" + _img(fig, "validation curves of every run"))


def _numbered(path: Path, kind: str) -> list[Path]:
    """path/kind{K} folders, by K."""
    found = [d for d in path.glob(f"{kind}*") if d.name[len(kind):].isdigit() and d.is_dir()]
    return sorted(found, key=lambda d: int(d.name[len(kind):]))


def _json(path: Path, notes: list[str]) -> dict | None:
    """A JSON object file's content; None when missing, or (with a note naming the fix, kit.runfiles) when damaged,
    e.g. cut short by a kill."""
    try:
        return runfiles.read_json(path, "")
    except FileNotFoundError:
        return None
    except runfiles.Damaged as err:
        member = path.parent.parent if path.parent.name == "backup" else path.parent  # a fold's or full fit's file?
        run = member.parent if member.name == "export" else member
        fix = (runfiles.member_fix(member) if member.name[:4] in ("fold", "full") and member.name[4:].isdigit()
               else {"cv.json": f"kit cv {run} writes it again", "export.json": f"kit export {run} writes it again"}
               .get(path.name, "restore it"))
        notes.append(f"{path.parent.name}/{path.name}: damaged ({err.problem}): {fix}")
    except OSError as err:
        notes.append(f"{path.parent.name}/{path.name}: unreadable ({err})")
    return None


def _read_config(path: Path, notes: list[str]) -> dict[str, Any]:
    """The run's resolved config (RUN/config.json, else its first fold's or full fit's), flattened; keys that a
    config from an older kit lacks take today's defaults, so runs compare key by key."""
    candidates = [path / "config.json"] + [d / "config.json" for d in _numbered(path, "fold") + _numbered(path, "full")]
    for candidate in candidates:
        raw = _json(candidate, notes)
        if raw is None:
            continue
        try:
            return flatten(config_mod.from_dict(raw).to_dict())
        except (KitError, TypeError) as err:
            notes.append(f"{candidate.relative_to(path)}: not a config this kit knows ({err}); compared as written")
            return flatten(raw)
    notes.append("no config.json: its changes are unknown")
    return {}


def _progress(d: Path, notes: list[str]) -> str:
    """How far an unfinished fold or full fit got: epochs in its backup (what --resume continues from), else rows
    of its history, of the epochs its config asks for."""
    state = _json(d / "backup" / "state.json", notes)
    if state and "epoch" in state:
        done = int(state["epoch"])
    else:
        history = d / "history.csv"
        done = max(0, len(history.read_bytes().splitlines()) - 1) if history.is_file() else 0
    config = _json(d / "config.json", notes) or {}
    total = (config.get("train") or {}).get("epochs")
    return f"epoch {done}" + (f" of {total}" if total else "")


def _folds_in_csv(path: Path) -> int | None:
    """The fold count a run's folds.csv assigns (sequence_id,participant_id,fold), where run.json is missing."""
    try:
        with open(path) as f:
            next(f)
            return max(int(line.rsplit(",", 1)[1]) for line in f if line.strip()) + 1
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def _cv_accuracy(run: Run, cv: dict | None) -> float | None:
    """cv.json's out-of-fold accuracy when it covers exactly the finished folds; else the same number from the
    folds' metrics.json (their accuracies weighted by held-out sequences), with a note to refresh cv.json."""
    if not run.folds:
        return float(cv["oof_accuracy"]) if cv and "oof_accuracy" in cv else None
    covered = set((cv or {}).get("fold_accuracy", {}))
    if cv and "oof_accuracy" in cv and covered == {str(k) for k in run.folds}:
        return float(cv["oof_accuracy"])
    listed = ",".join(map(str, run.folds))
    run.notes.append((f"cv.json covers folds {','.join(sorted(covered, key=int)) or 'none'}, not {listed}" if cv else
                      "no cv.json") + f": CV computed from the folds' metrics.json; kit cv {run.path} brings it up "
                      "to date")
    sizes = [m.get("val_sequences") for m in run.folds.values()]
    accuracies = list(run.fold_accuracy.values())
    if all(isinstance(s, int) and s > 0 for s in sizes):
        return sum(a * s for a, s in zip(accuracies, sizes)) / sum(sizes)
    return statistics.fmean(accuracies)
