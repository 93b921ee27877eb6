"""Cross-validation summaries from the folds present in a run: cv.json and report.md.

Folds may be trained on different machines (`kit train --fold K`); `kit cv RUN` merges whatever is there.
Full fits on every signer (RUN/full*, kit train --full) hold no signer out, so they never count here.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.errors import KitError
from kit.data.vocabulary import run_signs
from kit.runfiles import Damaged, read_json, retrain_fix
from kit.runlock import writing

N_CONFUSED = 15  # sign pairs listed in report.md


@dataclass(frozen=True)
class CVResult:
    run_dir: Path
    fold_accuracy: dict
    oof_accuracy: float
    n_sequences: int
    chance: float
    n_folds: int | None = None  # the folds the run was started with (run.json); None when it does not say

    @property
    def coverage(self) -> str:
        """" (2 of 5 folds)" when some of the run's folds are missing, so a partial CV never reads as a whole one."""
        done = len(self.fold_accuracy)
        return f" ({done} of {self.n_folds} folds)" if self.n_folds and done < self.n_folds else ""

    def __str__(self) -> str:
        folds = ", ".join(f"fold {k}: {acc:.3f}" for k, acc in sorted(self.fold_accuracy.items()))
        return (f"cross-validation on unseen signers{self.coverage}: {self.oof_accuracy:.3f} accuracy over "
                f"{self.n_sequences} "
                f"out-of-fold sequences (chance {self.chance:.3f}); {folds}\n"
                f"run: {self.run_dir} (cv.json, report.md)")


def load_oof(run_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    """The out-of-fold predictions of every finished fold, by fold number."""
    parts = sorted(Path(run_dir).glob("fold*/oof.npz"))
    if not parts and list(Path(run_dir).glob("full*/metrics.json")):
        raise KitError(f"{run_dir}: only full fits on every signer, which have no out-of-fold predictions; "
                       f"train folds to cross-validate (kit train --cache CACHE --out {run_dir} --folds 5)")
    if not parts:
        raise KitError(f"{run_dir}: no finished fold (fold*/oof.npz); run kit train first")
    out = {}
    for path in parts:
        out[int(path.parent.name[4:])] = _read_oof(path)
    return out


OOF_KEYS = ("sequence_ids", "participant_ids", "labels", "probs")  # what kit.training.train writes


def _read_oof(path: Path) -> dict[str, np.ndarray]:
    """One fold's oof.npz; one that is cut short, not an npz or not as kit train wrote it is Damaged, naming the fix."""
    try:
        with np.load(path, allow_pickle=False) as oof:
            found = {key: oof[key] for key in oof.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise Damaged(path, f"not a readable npz: {type(err).__name__}: {err}", retrain_fix(path.parent)) from None
    missing = [key for key in OOF_KEYS if key not in found]
    n = {len(found[key]) for key in OOF_KEYS if key in found}
    if missing or len(n) > 1 or found["probs"].ndim != 2:
        raise Damaged(path, f"missing {', '.join(missing)}" if missing else "arrays of different lengths",
                      retrain_fix(path.parent))
    return found


def confused_pairs(labels: np.ndarray, predicted: np.ndarray, n: int = N_CONFUSED) -> list[tuple[int, int, int]]:
    """The most frequent (true, predicted, count) mistakes, most frequent first, ties by label order."""
    wrong = labels != predicted
    pairs, counts = np.unique(np.stack([labels[wrong], predicted[wrong]], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -counts))[:n]
    return [(int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i])) for i in order]


def summarize(run_dir: Path) -> CVResult:
    """Merge the folds present in `run_dir` into cv.json and report.md."""
    run_dir = Path(run_dir)
    with writing(run_dir, "kit cv", "run"):  # free inside kit train, which holds its run already
        return _summarize(run_dir)


def _summarize(run_dir: Path) -> CVResult:
    folds = load_oof(run_dir)
    labels = np.concatenate([f["labels"] for f in folds.values()])
    predicted = np.concatenate([f["probs"].argmax(-1) for f in folds.values()])
    participants = np.concatenate([f["participant_ids"] for f in folds.values()])
    hits = labels == predicted
    fold_acc = {k: float((f["probs"].argmax(-1) == f["labels"]).mean()) for k, f in folds.items()}
    per_participant = {str(p): float(hits[participants == p].mean()) for p in np.unique(participants)}
    # chance: guessing uniformly among the signs that occur (the data may hold fewer than 250)
    n_folds = next((read_json(meta, f"delete it, then give again the command that started {run_dir}").get("n_folds")
                    for meta in (run_dir / "run.json", run_dir / "kaggle" / "state.json")  # kit train's, kaggle's
                    if meta.is_file()), None)
    result = CVResult(run_dir, fold_acc, float(hits.mean()), len(hits), 1.0 / len(np.unique(labels)), n_folds)
    pairs = confused_pairs(labels, predicted)
    names = run_signs(run_dir)  # the data's own map: the competition's 250 signs, or your N
    (run_dir / "cv.json").write_text(json.dumps({
        "oof_accuracy": result.oof_accuracy, "n_sequences": result.n_sequences, "chance": result.chance,
        "fold_accuracy": {str(k): v for k, v in sorted(fold_acc.items())},
        "participant_accuracy": per_participant,
        "participant_sequences": {str(p): int(np.sum(participants == p)) for p in np.unique(participants)},
        "sign_accuracy": {names[int(t)]: float(hits[labels == t].mean()) for t in np.unique(labels)},
        "confused_pairs": [{"true": names[t], "predicted": names[p], "count": c} for t, p, c in pairs],
    }, indent=2) + "\n")
    (run_dir / "report.md").write_text(_markdown(result, per_participant, participants, pairs, names))
    return result


def _markdown(result: CVResult, per_participant: dict, participants: np.ndarray, pairs: list, names) -> str:
    lines = [f"# Cross-validation: {result.run_dir.name}", "",
             f"Out-of-fold accuracy on unseen signers{result.coverage}: **{result.oof_accuracy:.4f}** over "
             f"{result.n_sequences} "
             f"sequences (chance {result.chance:.4f}).", "", "| fold | accuracy |", "| --- | --- |"]
    lines += [f"| {k} | {acc:.4f} |" for k, acc in sorted(result.fold_accuracy.items())]
    lines += ["", "| participant | sequences | accuracy |", "| --- | --- | --- |"]
    for pid, acc in sorted(per_participant.items(), key=lambda item: item[1]):
        lines.append(f"| {pid} | {int(np.sum(participants == int(pid)))} | {acc:.4f} |")
    lines += ["", "Most confused signs (true -> predicted):", "", "| true | predicted | count |", "| --- | --- | --- |"]
    lines += [f"| {names[t]} | {names[p]} | {c} |" for t, p, c in pairs] or ["| - | - | 0 |"]
    return "\n".join(lines) + "\n"
