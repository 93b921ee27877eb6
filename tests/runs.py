"""Build what tests start from: cached synthetic data, and run directories with untrained models (so export
and evaluate tests need no training)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kit.cli import app
from kit.config import Config, ModelConfig, PreprocessConfig
from kit.training.train import build_model


def fake_run(run_dir: Path, model_names=("llama_tiny",) * 3, max_len: int = 32, seed: int = 0,
             **preprocess_options) -> Path:
    """A run with one fold per model name: config.json, random weights and metrics.json each."""
    import keras

    for k, name in enumerate(model_names):
        keras.utils.set_random_seed(seed + k)
        cfg = Config(preprocess=PreprocessConfig(max_len=max_len, **preprocess_options), model=ModelConfig(name=name))
        fold_dir = Path(run_dir) / f"fold{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(fold_dir / "config.json")
        build_model(cfg).save_weights(fold_dir / "model.weights.h5")
        (fold_dir / "metrics.json").write_text(json.dumps({"fold": k, "val_accuracy": 0.5 - 0.1 * k}))
    return Path(run_dir)


def synth_and_prepare(root: Path, signs: int, participants: int, per_sign: int, seed: int = 0,
                      prepare: bool = True) -> Path:
    """`kit synth` into root/data and (unless prepare=False) `kit prepare` into root/cache, through the CLI;
    returns `root`."""
    commands = [["synth", "--data", str(root / "data"), "--signs", str(signs), "--signers", str(participants),
                 "--per-sign", str(per_sign), "--seed", str(seed)]]
    if prepare:
        commands.append(["prepare", "--data", str(root / "data"), "--cache", str(root / "cache"), "--workers", "1"])
    for args in commands:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    return root
