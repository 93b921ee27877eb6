"""`kit evaluate`: score any TFLite model the way the competition's scorer does.

Per sequence: read the parquet's x, y, z with pandas, reshape to `[n_frames, 543, 3]` float32 (NaN kept), call
`serving_default`, take the argmax. Accuracy is the share of argmax equal to the sign's index in the data's map
(the competition's 250 signs, or your own vocabulary's N, whose model has N outputs).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.contract import tflite
from kit.errors import KitError
from kit.data.landmarks import N_CLASSES, N_LANDMARKS, SIGN_MAP_NAME
from kit.progress import say, track
from kit.runlock import holder
from kit.contract.quality import leak_warning


@dataclass(frozen=True)
class EvalResult:
    model: Path
    n: int
    accuracy: float
    chance: float
    participant_accuracy: dict
    mean_ms: float
    p95_ms: float
    size_bytes: int
    warning: str = ""  # scored signers that trained a member (kit.contract.quality.leak_warning)

    def __str__(self) -> str:
        per = ", ".join(f"{p}: {a:.3f}" for p, a in sorted(self.participant_accuracy.items()))
        return (f"{self.model}: accuracy {self.accuracy:.3f} on {self.n} sequences (chance {self.chance:.3f}); "
                f"latency mean {self.mean_ms:.2f} ms, p95 {self.p95_ms:.2f} ms per sequence (plain kernels, as the "
                f"scorer runs); "
                f"size {self.size_bytes / 1e6:.2f} MB\nper participant: {per}") + (
                    f"\n{self.warning}" if self.warning else "")


def load_scorer_frames(path: Path) -> np.ndarray:
    """The scorer's own loader: x, y, z columns reshaped to `[n_frames, 543, 3]` float32."""
    data = pd.read_parquet(path, columns=["x", "y", "z"])
    n_frames = int(len(data) / N_LANDMARKS)
    return data.values.reshape(n_frames, N_LANDMARKS, 3).astype(np.float32)


def read_labels(data_dir: Path, participants: list[int] | None = None, limit: int | None = None) -> pd.DataFrame:
    """train.csv rows (with their label index) to score, optionally only some signers or the first `limit`.
    `.attrs["n_signs"]`: how many signs the data's map has (the outputs a model of this data gives)."""
    data_dir = Path(data_dir)
    csv, sign_map = data_dir / "train.csv", data_dir / "sign_to_prediction_index_map.json"
    for required in (csv, sign_map):
        if not required.is_file():
            raise KitError(f"{required}: missing; --data must be a competition folder (kit fetch or kit synth)")
    rows = pd.read_csv(csv)
    missing = {"path", "participant_id", "sequence_id", "sign"} - set(rows.columns)
    if missing:
        raise KitError(f"{csv}: missing columns {sorted(missing)}; expected path,participant_id,sequence_id,sign")
    index = json.loads(sign_map.read_text())
    unknown = sorted(set(rows["sign"]) - set(index))
    if unknown:
        raise KitError(f"{csv}: signs not in {sign_map.name}: {unknown[:5]}")
    if participants:
        rows = rows[rows["participant_id"].isin(participants)]
    if limit:
        rows = rows.head(limit)
    if rows.empty:
        raise KitError(f"{csv}: no rows left to score (check --participants / --limit)")
    rows = rows.assign(label=rows["sign"].map(index))
    rows.attrs["n_signs"] = len(index)
    return rows


def say_writers(model_path: Path) -> None:
    """A note for each folder of the model (its export folder, its run) that a command is writing now: the model
    is scored as it is at this moment (kit.runlock)."""
    file = tflite.model_file(model_path)
    folders = [file.parent] + ([file.parent.parent] if file.parent.name == "export" else [])
    for folder in folders:
        writer = holder(folder)
        if writer:
            say(f"note: {folder} is still being written by {writer}: scoring {file} as it is now")


def evaluate(model_path: Path, data_dir: Path, participants: list[int] | None = None,
             limit: int | None = None, threads: int = 1) -> EvalResult:
    """Run `model_path` (a .tflite or submission.zip) over the chosen train.csv rows and score it."""
    say_writers(model_path)
    model = tflite.read_model(model_path)
    rows = read_labels(data_dir, participants, limit)
    # Timed on the kernels the export's latency gate judges (tflite.SCORER_KERNELS), so both report one number.
    interp = tflite.interpreter(model, threads=threads, xnnpack=tflite.SCORER_KERNELS == "xnnpack")
    n_signs = rows.attrs["n_signs"]
    outputs = tflite.n_outputs(interp) if n_signs != N_CLASSES else N_CLASSES
    if outputs != n_signs:  # your own vocabulary: a model of its signs
        raise KitError(f"{model_path}: has {outputs} outputs, but {Path(data_dir) / SIGN_MAP_NAME} "
                       f"names {n_signs} signs: score a model on data of its own vocabulary")
    predict = tflite.contract_runner(interp, str(model_path), n_classes=n_signs)
    hits, times = [], []
    for path in track(list(rows["path"]), "scoring"):
        frames = load_scorer_frames(Path(data_dir) / path)
        start = time.perf_counter()
        probs = predict(frames)
        times.append(time.perf_counter() - start)
        hits.append(int(np.argmax(probs)))
    hits = np.asarray(hits) == rows["label"].to_numpy()
    per = {str(p): float(hits[(rows["participant_id"] == p).to_numpy()].mean()) for p in rows["participant_id"].unique()}
    ms = np.asarray(times) * 1000
    return EvalResult(Path(model_path), len(rows), float(hits.mean()), 1.0 / rows["sign"].nunique(), per,
                      float(ms.mean()), float(np.percentile(ms, 95)), len(model),
                      leak_warning(model_path, list(rows["participant_id"].unique())))
