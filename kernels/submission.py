"""The asl-signs submission kernel: check model.tflite against the competition's contract, then write submission.zip.

On Kaggle it runs with no arguments: the model comes from the attached private dataset and the real sequences
from the competition's own input, both under /kaggle/input; submission.zip goes to /kaggle/working.
Locally (the tests do this in a temp dir): python kernels/submission.py --input DIR --output DIR

The contract (what the scorer runs): a TFLite file of at most 40 MB, signature `serving_default`, input `inputs`
float32 [n_frames, 543, 3] with NaN for missing landmarks, output `outputs` [250]. Any breach ends the kernel with
an error, so that `kit submit` never submits a model that the scorer would reject hours later.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

EXPECTED_SHA256 = None  # kit submit writes the model's sha256 here, so that a stale dataset version is caught
MAX_BYTES = 40 * 1024 * 1024  # the competition's size limit for model.tflite
N_LANDMARKS, N_CLASSES = 543, 250
N_SEQUENCES = 3  # real sequences to run: enough to catch a shape or NaN problem, quick on a Kaggle CPU
MODEL_NAME = "model.tflite"


class ContractError(Exception):
    """The model breaks the competition's contract; the message says how."""


def interpreter_class():
    """The TFLite interpreter closest to the scorer's: tflite_runtime, then tf.lite, then ai_edge_litert."""
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, f"tf.lite (tensorflow {tf.__version__})"
    except (ImportError, AttributeError):  # AttributeError: a TensorFlow without tf.lite.Interpreter
        pass
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter, "ai_edge_litert"


def find_model(root: Path) -> Path:
    """The one model.tflite in the attached datasets; with EXPECTED_SHA256 set, the one with that hash."""
    # Depth-limited so that the competition's 94,477 landmark files are never walked.
    found = sorted(p for depth in ("*", "*/*", "*/*/*") for p in root.glob(f"{depth}/{MODEL_NAME}"))
    if EXPECTED_SHA256 is not None:
        matching = [p for p in found if sha256(p) == EXPECTED_SHA256]
        if matching:
            return matching[0]
        raise ContractError(
            f"no {MODEL_NAME} under {root} has sha256 {EXPECTED_SHA256} (found: {[str(p) for p in found]}); "
            "the dataset version may still be processing: run kit submit again in a few minutes"
        )
    if len(found) != 1:
        raise ContractError(f"expected exactly one {MODEL_NAME} under {root}, found {[str(p) for p in found]}")
    return found[0]


def find_sequences(root: Path, n: int = N_SEQUENCES) -> list[Path]:
    """The first `n` landmark files listed in the competition's train.csv that are present."""
    indexes = sorted(p for depth in ("*", "*/*") for p in root.glob(f"{depth}/train.csv"))
    for index in indexes:
        with index.open(newline="") as f:
            paths = [index.parent / row["path"] for row in csv.DictReader(f)]
        present = [p for p in paths[: 50 * n] if p.is_file()][:n]
        if present:
            return present
    raise ContractError(f"no competition train.csv with landmark files under {root}: attach the asl-signs data")


def read_sequence(path: Path) -> np.ndarray:
    """A landmark file as the scorer feeds it: float32 [n_frames, 543, 3], NaN where a landmark is missing."""
    data = pd.read_parquet(path, columns=["x", "y", "z"])
    if len(data) % N_LANDMARKS:
        raise ContractError(f"{path}: {len(data)} rows is not a whole number of {N_LANDMARKS}-landmark frames")
    return data.to_numpy(np.float32).reshape(-1, N_LANDMARKS, 3)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_signature(interpreter) -> None:
    """The scorer calls get_signature_runner("serving_default")(inputs=...)["outputs"]: those names must exist."""
    signatures = interpreter.get_signature_list()
    if "serving_default" not in signatures:
        raise ContractError(f"no 'serving_default' signature (found {sorted(signatures)})")
    sig = signatures["serving_default"]
    if list(sig.get("inputs", [])) != ["inputs"]:
        raise ContractError(f"serving_default takes {list(sig.get('inputs', []))}, expected exactly ['inputs']")
    if "outputs" not in sig.get("outputs", []):
        raise ContractError(f"serving_default returns {list(sig.get('outputs', []))}, expected 'outputs'")


def run_on(runner, sequences: list[Path]) -> float:
    """Run every sequence, check each answer; returns the mean milliseconds per call."""
    seconds = 0.0
    for path in sequences:
        frames = read_sequence(path)
        start = time.perf_counter()
        out = runner(inputs=frames)["outputs"]
        seconds += time.perf_counter() - start
        out = np.asarray(out)
        if out.shape != (N_CLASSES,):
            raise ContractError(f"{path.name} ({len(frames)} frames): outputs has shape {out.shape}, expected (250,)")
        if not np.isfinite(out).all():
            raise ContractError(f"{path.name} ({len(frames)} frames): outputs holds NaN or infinity")
    return 1000 * seconds / len(sequences)


def check_model(model: Path, sequences: list[Path]) -> str:
    """Every contract check; returns a one-line summary or raises ContractError."""
    size = model.stat().st_size
    if size > MAX_BYTES:
        raise ContractError(f"{model} is {size / 2**20:.1f} MB; the competition allows 40 MB")
    cls, name = interpreter_class()
    print(f"interpreter: {name}")
    interpreter = cls(model_path=str(model))
    check_signature(interpreter)
    ms = run_on(interpreter.get_signature_runner("serving_default"), sequences)
    if ms > 100:  # the scorer's budget is on its own CPU, so this only warns
        print(f"warning: {ms:.0f} ms per sequence here; the scorer allows 100 ms on average")
    return f"{model.name}: {size / 2**20:.2f} MB, {len(sequences)} real sequences OK, {ms:.1f} ms per sequence"


def write_submission(model: Path, out_dir: Path) -> Path:
    """submission.zip holding exactly model.tflite, written whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target, tmp = out_dir / "submission.zip", out_dir / "submission.zip.tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(model, MODEL_NAME)
    tmp.replace(target)
    with zipfile.ZipFile(target) as zf:
        if zf.namelist() != [MODEL_NAME] or zf.testzip() is not None:
            raise ContractError(f"{target} does not hold exactly an intact {MODEL_NAME}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=Path("/kaggle/input"), help="attached datasets and competition")
    parser.add_argument("--output", type=Path, default=Path("/kaggle/working"), help="where submission.zip goes")
    args = parser.parse_args(argv)
    try:
        model = find_model(args.input)
        print(f"model: {model} (sha256 {sha256(model)})")
        print(check_model(model, find_sequences(args.input)))
        print(f"wrote {write_submission(model, args.output)}")
    except ContractError as err:
        print(f"CONTRACT ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
