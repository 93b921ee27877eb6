"""`kit export`: one TFLite graph that preprocesses once and averages the probabilities of N fold models.

Models are rebuilt in float32 from each fold's saved config and weights under the TensorFlow backend, so a run
trained under JAX or in mixed precision exports the same way. Only builtin TFLite ops are allowed (the scorer has
no Flex delegate). A run holding full fits on every signer (kit train --full) exports those rather than its folds;
export.json says of each model whether it was validated on unseen signers.

The outputs are the signs of the members' data (kit/data/vocabulary.py): the competition's 250, or your own N. The sign
map goes beside model.tflite; a model of your own signs passes the same gates (for its N outputs) and is reported as
"own vocabulary: N signs, not a competition submission", so no submission.zip is written for it.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from kit.contract import tflite
from kit.data import vocabulary
from kit.config import PreprocessConfig
from kit.errors import KitError
from kit.contract.gates import LATENCY_LIMIT_MS, SIZE_LIMIT_MB, check_model, failures, vocabulary_gate
from kit.data.landmarks import N_LANDMARKS
from kit.preprocessing.preprocess import preprocess
from kit.progress import plural, say
from kit.contract.quality import run_quality, trained_signers
from kit import runfiles
from kit.runlock import holder, writing
from kit.seeing.report import report_or_warn
from kit.training.train import load_fold_model


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    models: list
    size_bytes: int
    gates: list = field(default_factory=list)
    forced: bool = False
    members: list = field(default_factory=list)  # member_info of each model
    competition: bool = True  # the competition's 250 signs (else your own vocabulary: no submission.zip)
    left_out: list = field(default_factory=list)  # "RUN/fold2: why" for each finished fold --top left out
    quality: str = ""  # the run's CV, folds finished of planned, models kept (kit.contract.quality), if exported

    @property
    def submission(self) -> Path:
        return self.out_dir / "submission.zip"

    def __str__(self) -> str:
        lines = [f"ensemble of {plural(len(self.models), 'model')}:"]
        lines += [f"  {m['path']}: {describe_member(m)}" for m in self.members]
        lines += [f"  left out {why}" for why in self.left_out]
        lines += [str(gate) for gate in self.gates]
        if self.forced and failures(self.gates):
            lines.append("--force: wrote submission.zip although a gate failed")
        if self.competition:
            lines.append(f"wrote {self.submission} ({self.size_bytes / 1e6:.2f} MB) and {self.out_dir / 'export.json'}")
        else:
            lines.append(f"wrote {self.out_dir / 'model.tflite'} ({self.size_bytes / 1e6:.2f} MB), its sign map and "
                         f"{self.out_dir / 'export.json'}; no submission.zip (own vocabulary): try it with kit "
                         f"predict {self.out_dir / 'model.tflite'} RECORDING")
        return "\n".join(lines + ([self.quality] if self.quality else []))


def member_info(model_dir: Path) -> dict:
    """How the model in `model_dir` was trained, from its metrics.json: a fold validated on unseen signers (with
    its accuracy there) or a full fit on every signer (not validated)."""
    path = Path(model_dir) / "metrics.json"
    if not path.is_file():
        return {"path": str(model_dir), "validated": False, "trained_on": "unknown (no metrics.json)"}
    metrics = runfiles.read_metrics(model_dir)
    if metrics.get("validated", True) and "val_accuracy" in metrics:
        return {"path": str(model_dir), "validated": True, "trained_on": "every signer but its fold's",
                "fold": metrics.get("fold"), "val_accuracy": metrics["val_accuracy"]}
    return {"path": str(model_dir), "validated": False, "trained_on": "every signer", "seed": metrics.get("seed"),
            "epochs": metrics.get("epochs")}


def describe_member(info: dict) -> str:
    """One phrase for export's output and the report."""
    if info["validated"]:
        return f"fold, accuracy {info['val_accuracy']:.3f} on its unseen signers"
    if info["trained_on"] == "every signer":
        return f"full fit on every signer (seed {info['seed']}, {info['epochs']} epochs), not validated"
    return f"trained on {info['trained_on']}, not validated"


def full_members(run_dir: Path) -> list[Path]:
    """The finished full fits of a run (full*/metrics.json), by member number."""
    found = [p.parent for p in Path(run_dir).glob("full*/metrics.json") if p.parent.name[4:].isdigit()]
    return sorted(found, key=lambda d: int(d.name[4:]))


DEFAULT_TOP = 3  # folds a run's export keeps unless --top says (its full fits: all of them)


def pick_models(run_dir: Path, top: int | None) -> list[Path]:
    """The `top` models of a run: its full fits on every signer when it has any (the models trained on the most
    data, by member number; all of them when `top` is None: `kit train --full --seeds 4` exports 4), else its
    finished folds, best validation accuracy first (DEFAULT_TOP when `top` is None)."""
    full = full_members(run_dir)
    if full:
        top = len(full) if top is None else top
        if len(full) < top:
            say(f"note: {run_dir} has {len(full)} finished full fits, fewer than {top}: exporting all of them")
        if list(Path(run_dir).glob("fold*/metrics.json")):
            say(f"note: {run_dir} holds folds and full fits: exporting the full fits (--models {run_dir}/fold0 ... "
                "exports folds)")
        return full[:top]
    top = DEFAULT_TOP if top is None else top
    scored = []
    for metrics in sorted(Path(run_dir).glob("fold*/metrics.json")):
        scored.append((runfiles.read_metrics(metrics.parent)["val_accuracy"], metrics.parent))
    if not scored:
        raise KitError(f"{run_dir}: no finished fold (fold*/metrics.json); run kit train first")
    if len(scored) < top:
        say(f"note: {run_dir} has {plural(len(scored), 'finished fold')}, fewer than {top}: exporting all of them")
    return [path for _, path in sorted(scored, key=lambda s: -s[0])[:top]]


def left_out(run_dir: Path, picked: list[Path], top: int) -> list[str]:
    """Each finished fold of `run_dir` that --top left out of `picked`, and why: its accuracy on unseen signers."""
    kept = {Path(p) for p in picked}
    out = []
    for metrics in sorted(Path(run_dir).glob("fold*/metrics.json")):
        if metrics.parent not in kept:
            accuracy = runfiles.read_metrics(metrics.parent).get("val_accuracy")
            out.append(f"{metrics.parent}: accuracy {accuracy:.3f} on its unseen signers, not among the "
                       f"{plural(len(kept), 'best fold')} --top {top} keeps" if accuracy is not None
                       else f"{metrics.parent}: no validation accuracy")
    return out


def resolve_models(run_dir: Path | None, models: list[Path] | None, top: int | None) -> list[Path]:
    """Model directories to ensemble: the `top` picked by pick_folds from `run_dir`, or each of `models`.

    An entry of `models` is a fold or full-fit directory (holding model.weights.h5) or a run directory (its first
    full fit, else its best fold), so one ensemble can mix runs and architectures.
    """
    if not models:
        if run_dir is None:
            raise KitError("give a run directory (kit export runs/base) or --models FOLD_OR_RUN_DIR ...")
        if not Path(run_dir).is_dir():
            raise KitError(f"{run_dir}: no such folder; give a run directory that kit train --out wrote (kit runs "
                           "lists them)")
        return pick_models(run_dir, top)
    picked = []
    for path in map(Path, models):
        if (path / "model.weights.h5").is_file():
            picked.append(path)
        elif list(path.glob("fold*/metrics.json")) or full_members(path):
            picked.extend(pick_models(path, 1))
        else:
            raise KitError(f"{path}: neither a trained fold or full fit (model.weights.h5) nor a run directory "
                           "(fold*/, full*/)")
    return picked


def member_signs(fold_dirs: list[Path]) -> tuple[str, ...]:
    """The signs the members name (each run's map, kit/data/vocabulary.py); members that name different signs cannot
    be averaged, so they are refused."""
    found = {}
    for d in fold_dirs:
        found.setdefault(vocabulary.run_signs(Path(d).parent), []).append(str(d))
    if len(found) > 1:
        kinds = "; ".join(f"{', '.join(dirs)}: {vocabulary.describe(signs)}" for signs, dirs in found.items())
        raise KitError(f"these models name different signs, so their outputs cannot be averaged: {kinds}")
    return next(iter(found))


class Ensemble(tf.Module):
    """raw `[T, 543, 3]` -> each distinct preprocessing once -> mean of the models' softmax -> `[n_classes]`.

    Models trained with different feature options (say an mlp80 fold beside llama26 folds) share the graph;
    models with the same preprocessing share its ops. The served graph runs the models on the real frames only
    (`pad=False`); `pad=True` pads to max_len as training does (bench/contract/latency.py times the two side by side).
    `reference` is always the padded Keras path: the parity gate proves the unpadded graph against it.
    """

    def __init__(self, models, preprocess_cfgs: list[PreprocessConfig], pad: bool = False):
        super().__init__()
        self.models = models
        self.pad = pad
        self.preprocess_cfgs = list(dict.fromkeys(preprocess_cfgs))  # distinct, in first-seen order
        self.uses = [self.preprocess_cfgs.index(c) for c in preprocess_cfgs]
        # Keras 3 variables are not tracked through a tf.Module attribute; list them so the converter
        # freezes them as constants instead of leaving VAR_HANDLE ops that read as NaN.
        self.variables_ = [v.value for m in models for v in m.weights]

    @tf.function(input_signature=[tf.TensorSpec([None, N_LANDMARKS, 3], tf.float32, name=tflite.INPUT)])
    def serve(self, inputs):
        return {tflite.OUTPUT: self._probs(inputs, self.pad)}

    def reference(self, frames: np.ndarray) -> np.ndarray:
        """The padded Keras path, run eagerly, as in training: what the TFLite file must reproduce."""
        return self._probs(tf.constant(frames, tf.float32), pad=True).numpy()

    @property
    def max_lens(self) -> list[int]:
        return sorted({cfg.max_len for cfg in self.preprocess_cfgs})

    def _probs(self, inputs: tf.Tensor, pad: bool) -> tf.Tensor:
        batches = []
        for cfg in self.preprocess_cfgs:
            features, mask = preprocess(inputs, cfg, pad=pad)
            batches.append({"features": features[None], "mask": mask[None]})
        probs = [tf.nn.softmax(m(batches[k], training=False), axis=-1) for m, k in zip(self.models, self.uses)]
        return tf.reduce_mean(tf.stack(probs), axis=0)[0]


def load_ensemble(fold_dirs: list[Path], pad: bool = False) -> Ensemble:
    """Rebuild each fold's model from its own config (architecture, sizes and preprocessing)."""
    models, configs = [], []
    for d in fold_dirs:
        model, cfg = load_fold_model(d)
        models.append(model)
        configs.append(cfg.preprocess)
    return Ensemble(models, configs, pad=pad)


def convert(ensemble: Ensemble, fp16: bool = False) -> bytes:
    """TFLite flatbuffer of the ensemble with builtin ops only."""
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(ensemble, tmp, signatures={tflite.SIGNATURE: ensemble.serve.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[tflite.SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if fp16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as err:  # the converter raises ConverterError with pages of MLIR
            first = next((ln for ln in str(err).splitlines() if "error" in ln.lower()), str(err)[:300])
            raise KitError(f"TFLite conversion failed with builtin ops only: {first.strip()}")


def export(run_dir: Path | None, models: list[Path] | None = None, out_dir: Path | None = None,
           top: int | None = None,
           fp16: bool = False, force: bool = False, max_mb: float = SIZE_LIMIT_MB,
           budget_ms: float = LATENCY_LIMIT_MS) -> ExportResult:
    """Export an ensemble, run every gate, and write model.tflite, export.json and (if the gates pass) submission.zip.

    The latency gate holds the measured mean (times gates.BUDGET_SAFETY) to `budget_ms` and says how many more
    members of the same kind would fit.

    A failed gate raises KitError naming it, after writing model.tflite and export.json for inspection;
    `force=True` writes submission.zip anyway.
    """
    fold_dirs = resolve_models(run_dir, models, top)
    if out_dir is None:
        if run_dir is None:
            raise KitError("--out is needed when the models come only from --models")
        out_dir = Path(run_dir) / "export"
    out_dir = Path(out_dir)
    if run_dir is not None and (writer := holder(run_dir)):
        say(f"note: {run_dir} is still being written by {writer}: this export takes the models finished so far")
    with writing(out_dir, "kit export", "export"):  # one writer per export folder; the run itself is only read
        signs = member_signs(fold_dirs)
        say(f"exporting {plural(len(fold_dirs), 'model')}: {', '.join(map(str, fold_dirs))}")
        ensemble = load_ensemble(fold_dirs)
        model = convert(ensemble, fp16=fp16)
        say("checking the Kaggle contract (signature, ops, size, finiteness, latency, parity)")
        gates = check_model(model, reference=ensemble.reference, fp16=fp16, size_limit_mb=max_mb,
                            max_lens=ensemble.max_lens, budget_ms=budget_ms, members=len(fold_dirs),
                            n_classes=len(signs))
        gates.append(vocabulary_gate(signs))
        competition = gates[-1].ok
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.tflite").write_bytes(model)
        vocabulary.write_map(out_dir, signs)  # beside the model: the names of its outputs, for kit predict
        (out_dir / "submission.zip").unlink(missing_ok=True)  # never leave an older zip beside a newer model
        failed = failures(gates)
        # for evaluate's leak check
        members = [{**member_info(d), "participants": trained_signers(d)} for d in fold_dirs]
        (out_dir / "export.json").write_text(json.dumps({
            "models": [str(d) for d in fold_dirs], "members": members, "fp16": fp16, "size_bytes": len(model),
            "forced": force, "passed": not failed, "n_signs": len(signs), "competition": competition,
            "gates": [g.to_dict() for g in gates],
        }, indent=2) + "\n")
        if run_dir is not None and (Path(run_dir) / "report.html").is_file() \
                and out_dir.resolve() == (Path(run_dir) / "export").resolve():
            report_or_warn(run_dir)  # the run's page (kit train wrote it) now shows these gates
        if failed and not force:
            raise KitError(f"export gate {failed[0].name!r} failed: {failed[0].detail} "
                           f"(model.tflite and export.json are in {out_dir}; --force writes submission.zip anyway)")
        if competition:  # a model of your own signs is no submission: model.tflite and its map are the export
            with zipfile.ZipFile(out_dir / "submission.zip", "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("model.tflite", model)
        dropped = left_out(run_dir, fold_dirs, top or DEFAULT_TOP) \
            if run_dir is not None and not models and not full_members(run_dir) else []
        quality = ""
        if run_dir is not None:  # the models of this export, wherever --out put it (not those of RUN/export)
            own = out_dir.resolve() == (Path(run_dir) / "export").resolve()
            quality = str(replace(run_quality(run_dir), exported=len(fold_dirs), export_dir=None if own else out_dir))
        return ExportResult(out_dir, [str(d) for d in fold_dirs], len(model), gates, force, members, competition,
                            dropped, quality)
