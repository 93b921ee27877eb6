"""`kit predict`: which sign a model sees in one recording, as its top signs with their probabilities.

The model runs exactly as the competition's scorer runs it (kit.contract.tflite's contract runner: `[frames, 543, 3]`
float32 in, NaN where a landmark is missing, one output per sign in the sign map's order): the preprocessing is
inside the model's graph, so nothing here repeats it. The names come from the sign map beside the model (kit export
writes it; your own vocabulary's N signs), else the competition's 250. A landmark file is read with kit's checked reader; anything else is a
capture source, tracked with MediaPipe exactly as `kit capture` would write it (same rate, same dropped frames).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.data import landmarks as L
from kit.contract import tflite
from kit.errors import KitError
from kit.data import vocabulary
from kit.capture.sources import Source

TOP = 5


@dataclass(frozen=True)
class Prediction:
    model: Path
    source: str
    frames: int
    top: tuple[tuple[str, int, float], ...]  # (sign, prediction index, probability), most likely first
    ms: float  # the model's time on this sequence (one thread)
    note: str = ""

    def __str__(self) -> str:
        width = max(len(sign) for sign, _, _ in self.top)
        lines = [f"{self.source} ({self.frames} frame{'' if self.frames == 1 else 's'}) by {self.model}:"]
        lines += [f"{rank:>3}. {sign:<{width}}  {p:6.1%}" for rank, (sign, _, p) in enumerate(self.top, 1)]
        return "\n".join(lines + ([f"note: {self.note}"] if self.note else []))

    def to_json(self) -> str:
        return json.dumps({"model": str(self.model), "source": self.source, "frames": self.frames,
                           "ms": round(self.ms, 3), "note": self.note or None,
                           "top": [{"sign": s, "index": i, "probability": p} for s, i, p in self.top]}, indent=2)


def predict(model_path: str | os.PathLike, source: str | os.PathLike | Source, top: int = TOP,
            fps: float | None = None) -> Prediction:
    """The `top` signs `model_path` (model.tflite or submission.zip) gives `source`: a landmark .parquet, or a
    video, image, folder of images or opened Source (tracked with MediaPipe at `fps`, default the competition's)."""
    if top < 1:
        raise KitError(f"--signs {top}: must be 1 or more")
    model = load(model_path)
    frames, name = _frames(source, fps)
    return model.predict(frames, name, top)


@dataclass(frozen=True)
class Model:
    """A model loaded once and run on sequence after sequence (`kit live` answers each sign with it)."""

    path: Path
    names: tuple[str, ...]  # sign names by output index
    run: Callable[[np.ndarray], np.ndarray]  # frames -> outputs, as the scorer runs the model

    def predict(self, frames: np.ndarray, name: str, top: int = TOP) -> Prediction:
        """The `top` signs it sees in `frames` ([frames, 543, 3], NaN where not found), named `name`."""
        start = time.perf_counter()
        outputs = np.asarray(self.run(frames), dtype=np.float64)
        ms = 1000 * (time.perf_counter() - start)
        if not np.isfinite(outputs).all():
            raise KitError(f"{self.path}: gave non-finite outputs for {name}: the model is broken "
                           "(kit check shows which gate it fails)")
        probs, note = as_probabilities(outputs)
        hands = list(L.LEFT_HAND + L.RIGHT_HAND)
        if not np.isfinite(frames[:, hands]).any():
            note = "; ".join(filter(None, [note, "no hand in any frame: signs are made with the hands, so this guess "
                                           "means little (keep both hands in the picture)"]))
        best = np.argsort(-probs, kind="stable")[:top]
        return Prediction(self.path, name, len(frames), tuple((self.names[i], int(i), float(probs[i])) for i in best),
                          ms, note)


def load(model_path: str | os.PathLike) -> Model:
    """A model.tflite, submission.zip or run folder, checked against the contract, with its signs' names: the
    competition's 250, or your own N from the map beside the model file (a run folder: its export's)."""
    model_path = Path(model_path)
    interp = tflite.interpreter(tflite.read_model(model_path))
    try:
        n = tflite.n_outputs(interp)
    except (KeyError, ValueError, RuntimeError):  # no serving_default, or inputs it cannot take: said just below
        n = L.N_CLASSES
    problems = tflite.contract_problems(interp, n)
    if problems:  # before the sign map is looked for: a model of another task is not missing one
        raise KitError(f"{model_path}: does not fit the competition contract: {'; '.join(problems)}")
    names = vocabulary.model_signs(tflite.model_file(model_path), n)
    return Model(model_path, tuple(names), tflite.contract_runner(interp, str(model_path), n_classes=len(names)))


def as_probabilities(outputs: np.ndarray) -> tuple[np.ndarray, str]:
    """The outputs themselves when they are a distribution; else their softmax, and a note saying so."""
    if (outputs >= 0).all() and abs(outputs.sum() - 1) < 1e-3:
        return outputs, ""
    shifted = np.exp(outputs - outputs.max())
    return shifted / shifted.sum(), "the model's outputs are not probabilities (they do not sum to 1): shown softmaxed"


def _frames(source, fps: float | None) -> tuple[np.ndarray, str]:
    if not isinstance(source, Source) and Path(source).suffix.lower() == ".parquet":
        from kit.data.parquet import read_landmarks

        return read_landmarks(source), str(source)
    from kit.capture.holistic import COMPETITION_FPS, competition_frames, run_holistic
    from kit.capture.sources import open_source

    opened = source if isinstance(source, Source) else open_source(source)
    frames, _ = competition_frames(run_holistic(opened, COMPETITION_FPS if fps is None else fps))
    return frames.astype(np.float32), opened.name
