"""What a run's export is worth before it goes up: its CV against chance, its folds finished of those planned, the
models its export kept. kit export prints it, kit submit prints it, refuses a partial or below-chance run without
--force, and, with no run named, picks the best exported run by CV.

Everything is read from the files a run leaves (through kit.seeing.runs.read_run), so nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError
from kit.progress import plural
from kit.seeing.runs import DEFAULT_ROOT, find_runs, is_run, read_run

EXPORTED = ("model.tflite", "submission.zip")  # either one in RUN/export makes the run submittable


@dataclass(frozen=True)
class Quality:
    run_dir: Path
    cv_accuracy: float | None  # out-of-fold accuracy on unseen signers; None without a finished fold
    chance: float | None  # 1 / the number of signs the folds held out (cv.json); None without cv.json
    folds_finished: int
    folds_planned: int | None  # the fold count the run was started with; None when nothing records it
    full_fits: int
    exported: int | None  # models in RUN/export/export.json; None before kit export
    finish: str | None = None  # the command that trains the missing folds, where one works from the run's files
    export_dir: Path | None = None  # the export `exported` counts, when not RUN/export (kit export --out DIR)

    @property
    def problems(self) -> list[str]:
        """Why this run should not go up as it is: partial, or no better than guessing."""
        found = []
        if self.folds_planned and self.folds_finished < self.folds_planned and not self.full_fits:
            found.append(f"partial: {self.folds_finished} of {self.folds_planned} folds finished")
        if self.cv_accuracy is not None and self.chance is not None and self.cv_accuracy <= self.chance:
            found.append(f"CV {self.cv_accuracy:.3f} is not above chance ({self.chance:.3f})")
        return found

    def __str__(self) -> str:
        if self.cv_accuracy is None:
            cv = "no CV (no finished fold)"
        else:
            of = f"{self.folds_finished} of {self.folds_planned}" if self.folds_planned else str(self.folds_finished)
            cv = f"CV {self.cv_accuracy:.3f} over {of} folds" + (
                f" (chance {self.chance:.3f})" if self.chance is not None else "")
        full = f", {plural(self.full_fits, 'full fit')}" if self.full_fits else ""
        where = "its export" if self.export_dir is None else f"the export in {self.export_dir}"
        kept = f"; {where} keeps {plural(self.exported, 'model')}" if self.exported is not None else ""
        return f"run {self.run_dir}: {cv}{full}{kept}"


def run_quality(run_dir: Path) -> Quality:
    """The Quality of the run in `run_dir` (a folder kit train or kit kaggle train wrote)."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    cv, meta = _json(run_dir / "cv.json"), _json(run_dir / "run.json")
    finish = None
    if (run_dir / "kaggle" / "state.json").is_file():
        finish = f"kit kaggle train --resume {run_dir}"
    elif meta.get("cache") and meta.get("n_folds"):  # finished folds are skipped, the missing ones trained
        finish = (f"kit train --cache {meta['cache']} --config {run_dir / 'config.json'} --out {run_dir} "
                  f"--folds {meta['n_folds']}")
    return Quality(run_dir, run.cv_accuracy, cv.get("chance"), len(run.folds), run.n_folds, len(run.full),
                   run.export["models"] if run.export else None, finish)


def run_of(model_dir: Path) -> Path | None:
    """The run an export folder belongs to (RUN/export -> RUN), or None for a model found elsewhere."""
    model_dir = Path(model_dir)
    if model_dir.name == "export" and is_run(model_dir.parent):
        return model_dir.parent
    return model_dir if is_run(model_dir) else None


def best_export(root: Path = DEFAULT_ROOT) -> tuple[Path, str]:
    """The exported run under `root` with the best CV (runs without a CV last; on a tie, a run without problems,
    then the newest export), and a line saying which was picked among how many."""
    candidates = set(find_runs(root)) if root.is_dir() else set()
    candidates |= {p.parent.parent for name in EXPORTED for p in root.glob(f"*/export/{name}")}  # exports alone
    exported = sorted(path for path in candidates if any((path / "export" / name).is_file() for name in EXPORTED))
    if not exported:
        raise KitError(f"{root}: no run with an export (RUN/export/model.tflite): run kit export RUN_DIR first, or "
                       "name a model to submit")

    def rank(path: Path) -> tuple:
        q = run_quality(path)
        newest = max((path / "export" / n).stat().st_mtime for n in EXPORTED if (path / "export" / n).is_file())
        return (q.cv_accuracy is not None, q.cv_accuracy or 0.0, not q.problems, newest)  # ties: whole, then new

    best = max(exported, key=rank)
    return best, (f"picked {best}: the best CV of {plural(len(exported), 'exported run')} under {root} (name a run "
                  "to submit another)")


def trained_signers(model_dir: Path) -> list[int] | None:
    """The signer ids a fold or full fit trained on: a fold every signer of its run's folds.csv but its own fold's,
    a full fit every signer of its run (folds.csv, else the cache run.json names); None when its run does not say."""
    model_dir = Path(model_dir)
    run_dir, name = model_dir.parent, model_dir.name
    folds = run_dir / "folds.csv"
    if folds.is_file():
        import csv

        with folds.open() as f:
            rows = [(int(r["participant_id"]), int(r["fold"])) for r in csv.DictReader(f)]
        if name.startswith("fold") and name[4:].isdigit():
            return sorted({p for p, k in rows if k != int(name[4:])})
        return sorted({p for p, _ in rows})
    cache = _json(run_dir / "run.json").get("cache")
    if name.startswith("full") and cache and (Path(cache) / "index.npz").is_file():  # kit.data.cache.INDEX
        import numpy as np

        with np.load(Path(cache) / "index.npz") as index:
            return sorted({int(p) for p in index["participant_ids"]})
    return None


def leak_warning(model: Path, scored: list[int]) -> str:
    """A warning line when any scored signer trained a member of the model (its export.json records the signers
    of each member); empty when none did or when no export.json is beside the model (not a kit export)."""
    from kit.contract.tflite import model_file

    export = _json(model_file(model).parent / "export.json")
    members = export.get("members", [])
    if not members:
        return ""
    unknown = [m["path"] for m in members if m.get("participants") is None]
    seen = {p for m in members for p in m.get("participants") or []}
    leaked = sorted(set(map(int, scored)) & seen)
    line = ""
    if leaked:
        line = (f"warning: {len(leaked)} of {plural(len(set(scored)), 'scored signer')} trained a member of this "
                f"model ({', '.join(map(str, leaked[:8]))}{', ...' if len(leaked) > 8 else ''}): the accuracy on "
                "them is not on unseen signers; score signers the run never trained on (--participants)")
    if unknown:
        line += ("\n" if line else "") + (f"note: export.json does not say which signers {', '.join(unknown)} "
                                          "trained on (exported by an older kit): export again to check for leakage")
    return line


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
