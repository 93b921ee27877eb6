"""`kit demo`: the whole pipeline on synthetic signers, scored on signers no model saw."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kit.config import Config, ModelConfig, PreprocessConfig, TrainConfig
from kit.errors import KitError
from kit.progress import say
from kit.runlock import LOCK, writing

N_SIGNS, N_TRAIN_SIGNERS, N_TEST_SIGNERS, PER_SIGN = 25, 8, 2, 4


@dataclass(frozen=True)
class DemoResult:
    accuracy: float
    chance: float
    cv_accuracy: float
    size_mb: float
    mean_ms: float
    p95_ms: float
    submission: Path
    seconds: float

    def __str__(self) -> str:
        return "\n".join([
            "demo finished",
            f"  accuracy on {N_TEST_SIGNERS} unseen signers: {self.accuracy:.3f} (chance {self.chance:.3f}, "
            f"{self.accuracy / self.chance:.1f}x chance)",
            f"  cross-validation accuracy (out of fold): {self.cv_accuracy:.3f}",
            f"  model.tflite: {self.size_mb:.2f} MB (limit 40 MB); latency mean {self.mean_ms:.2f} ms, "
            f"p95 {self.p95_ms:.2f} ms on plain kernels, as the scorer runs (limit 100 ms)",
            f"  submission: {self.submission}",
            f"  took {self.seconds / 60:.1f} min",
            f"next: kit report {self.run_dir} (curves, signers, signs: {self.run_dir / 'report.html'}), "
            f"kit runs {self.run_dir} (the run in one row)",
        ])

    @property
    def run_dir(self) -> Path:
        return self.submission.parent.parent  # RUN/export/submission.zip


def demo_config(epochs: int, seed: int) -> Config:
    """A tiny LLaMa trained briefly: the recipe's shape at a size that fits minutes on a laptop CPU."""
    return Config(
        preprocess=PreprocessConfig(max_len=48),
        model=ModelConfig(name="llama_tiny"),
        train=TrainConfig(epochs=epochs, batch_size=32, learning_rate=1e-3, min_learning_rate=1e-5,
                          warmup_epochs=1, label_smoothing=0.1, optimizer="adamw", ema=True, seed=seed),
    )


MARKER = ".kit-demo"  # marks a folder kit demo wrote, so that a re-run may replace it


def _fresh_folder(out: Path) -> Path:
    """An empty `out` (but for the lock this demo holds on it); a previous demo's folder is replaced."""
    _check_ours(out)
    content = [p for p in out.iterdir() if p.name != LOCK] if out.exists() else []
    if content:
        say(f"replacing the previous demo in {out}")
        for path in content:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by kit demo; a re-run replaces this folder\n")
    return out


def _check_ours(out: Path) -> None:
    """A folder that holds anything but a previous demo (or a demo's lock) is never touched."""
    if out.exists() and any(p.name != LOCK for p in out.iterdir()) and not (out / MARKER).is_file():
        raise KitError(f"{out}: exists and was not written by kit demo; give another --out")


def run_demo(out: Path, epochs: int = 30, seed: int = 0) -> DemoResult:
    from kit.contract.evaluate import evaluate
    from kit.contract.export import export
    from kit.data.prepare import build_cache
    from kit.seeing.report import report_or_warn
    from kit.data.synth import synthesize
    from kit.training.train import train

    start = time.time()
    out = Path(out)
    _check_ours(out)  # before the lock, which would leave its file in someone else's folder
    with writing(out, "kit demo", "demo folder"):  # a second kit demo would delete this one's folder
        out = _fresh_folder(out)
        data, cache, run = out / "data", out / "cache", out / "run"
        say(f"[1/5] synthesising {N_SIGNS} signs x {N_TRAIN_SIGNERS + N_TEST_SIGNERS} signers into {data}")
        synthesize(data, n_signs=N_SIGNS, n_participants=N_TRAIN_SIGNERS + N_TEST_SIGNERS, per_sign=PER_SIGN, seed=seed)
        signers = sorted(pd.read_csv(data / "train.csv")["participant_id"].unique().tolist())
        train_signers, test_signers = signers[:N_TRAIN_SIGNERS], signers[N_TRAIN_SIGNERS:]
        say(f"[2/5] caching the {N_TRAIN_SIGNERS} training signers; {test_signers} are kept for the final score")
        say(str(build_cache(data, cache, participants=train_signers)))
        say(f"[3/5] training 3 folds of llama_tiny for {epochs} epochs")
        cv = train(demo_config(epochs, seed), cache, run, n_folds=3)
        say(str(cv))
        say("[4/5] exporting the 3-model ensemble to TFLite")
        exported = export(run, top=3)
        say(str(exported))
        report_or_warn(run)  # again, now with the export gates
        say(f"[5/5] scoring {exported.submission} on unseen signers {test_signers}, as the Kaggle scorer would")
        scored = evaluate(exported.submission, data, participants=test_signers)
        return DemoResult(scored.accuracy, scored.chance, cv.oof_accuracy, exported.size_bytes / 1e6,
                          scored.mean_ms, scored.p95_ms, exported.submission, time.time() - start)
