"""One config trains the same recipe on 1, 2 or 8 devices, and no held-out sequence is ever dropped.

The machines kit targets (T4 x2 under tf.distribute.MirroredStrategy, TPU v5e-8 under JAX's DataParallel) are
simulated faithfully on CPUs: 8 JAX host devices (XLA_FLAGS=--xla_force_host_platform_device_count=8, which must be
set before JAX is imported, so in a subprocess) and 2 logical TensorFlow CPU devices. Both refuse a batch that does
not split evenly over the replicas, the way the real ones do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.training.distribute import split_batch
from kit.errors import KitError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["--folds", "2", "--fold", "1", "--epochs", "1", "--model", "llama_tiny", "--set", "preprocess.max_len=16"]

# Runs kit's CLI in a process whose devices are set before JAX or TensorFlow is imported: first a global batch the
# replicas cannot split (must fail in one line, writing nothing), then a fold with the batch given last.
DEVICES = """
import os, sys
from pathlib import Path
if sys.argv[1] == "tf":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from typer.testing import CliRunner
from kit.cli import app
bad, args = sys.argv[2], sys.argv[3:]
out = Path(args[args.index("--out") + 1])
refused = CliRunner().invoke(app, args + ["--set", f"train.batch_size={bad}"])
print("REFUSED:", refused.exit_code, repr(refused.output.strip()), out.exists())
sys.exit(app(args, standalone_mode=False) or 0)
"""


@pytest.fixture(scope="module")
def odd_cache(synthetic) -> Path:
    """5 signs x 3 signers x 3: with --folds 2, fold 1 holds out one signer's 15 sequences, a count that splits
    neither 2 nor 8 ways, so validation and OOF always end in a remainder batch."""
    return synthetic(5, 3, 3, cache=True) / "cache"


def held_out(cache: Path, fold: int = 1, n_folds: int = 2) -> np.ndarray:
    from kit.data.cache import open_cache
    from kit.data.folds import assign_folds

    return np.flatnonzero(assign_folds(open_cache(cache).participant_ids, n_folds) == fold)


def run_on_devices(kind: str, cache: Path, run: Path, bad_batch: int, batch: int, *extra: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if kind == "jax":
        env.update(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run([sys.executable, "-c", DEVICES, kind, str(bad_batch), "train", "--cache", str(cache),
                           "--out", str(run), *TRAIN, "--set", f"train.batch_size={batch}", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def check_whole_fold(run: Path, cache: Path, devices: str, replicas: int, bad_batch: int, output: str) -> None:
    """The fold's OOF holds every held-out sequence, in order; export passes every gate; kit evaluate scores it."""
    refused = next(line for line in output.splitlines() if line.startswith("REFUSED:"))
    nearest = max(replicas, round(bad_batch / replicas) * replicas)
    assert refused == (f"REFUSED: 1 'Error: train.batch_size={bad_batch} (the global batch) does not split evenly "
                       f"over {replicas} replicas: use --set train.batch_size={nearest}' False")
    from kit.data.cache import open_cache

    val = held_out(cache)
    assert len(val) % replicas, "the test needs a held-out count with a remainder"
    oof = np.load(run / "fold1" / "oof.npz")
    assert len(oof["probs"]) == len(val) and np.all(np.isfinite(oof["probs"]))
    assert list(oof["sequence_ids"]) == list(open_cache(cache).sequence_ids[val])
    metrics = json.loads((run / "fold1" / "metrics.json").read_text())
    assert metrics["devices"] == devices and metrics["val_sequences"] == len(val)
    history = (run / "fold1" / "history.csv").read_text().splitlines()
    val_accuracy = float(dict(zip(history[0].split(","), history[1].split(",")))["val_accuracy"])
    assert val_accuracy == pytest.approx(metrics["val_accuracy"], abs=1e-6)  # the padding counted for nothing
    assert json.loads((run / "cv.json").read_text())["n_sequences"] == len(val)

    exported = runner.invoke(app, ["export", str(run), "--top", "1"])
    assert exported.exit_code == 0, exported.output
    assert "FAIL" not in exported.output and (run / "export" / "submission.zip").is_file()
    scored = runner.invoke(app, ["evaluate", str(run / "export" / "submission.zip"), "--data",
                                 str(cache.parent / "data")])
    assert scored.exit_code == 0, scored.output
    assert "on 45 sequences" in scored.output


def test_a_batch_that_does_not_split_names_one_that_does():
    """Rule: train.batch_size is the global batch; it must split evenly over the replicas, and the error names
    the nearest batch that does."""
    assert split_batch(64, 8) == 8 and split_batch(64, 2) == 32 and split_batch(7, 1) == 7
    with pytest.raises(KitError, match=r"train.batch_size=12 .* over 8 replicas: use --set train.batch_size=16"):
        split_batch(12, 8)
    with pytest.raises(KitError, match=r"use --set train.batch_size=8"):
        split_batch(3, 8)


def test_evaluation_pads_its_last_batch_with_rows_that_count_for_nothing(odd_cache):
    """Rule: an evaluation pass over N replicas keeps every sequence in order; only its last batch is padded, to
    a multiple of N, with rows of sample weight 0."""
    from kit.data.cache import open_cache
    from kit.config import Config, PreprocessConfig
    from kit.training.pipeline import make_dataset

    val = held_out(odd_cache)
    cfg = Config(preprocess=PreprocessConfig(max_len=16))
    batches = list(make_dataset(open_cache(odd_cache), val, cfg, training=False, batch_size=8, replicas=8))
    sizes = [len(w) for _, _, w in batches]
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    assert sizes == [8, 8] and all(s % 8 == 0 for s in sizes)
    assert weights.tolist() == [1.0] * len(val) + [0.0] * (16 - len(val))
    one = list(make_dataset(open_cache(odd_cache), val, cfg, training=False, batch_size=8))
    assert [len(w) for _, _, w in one] == [8, 7]
    np.testing.assert_array_equal(np.concatenate([x["features"] for x, _, _ in one]),
                                  np.concatenate([x["features"] for x, _, _ in batches])[:len(val)])


def test_padding_rows_count_for_nothing_in_validation_accuracy(odd_cache):
    """Rule: validation accuracy is exact whatever the padding: rows of weight 0 (the padding for the replicas)
    never count, right or wrong (Keras 3 applies sample weights only to weighted metrics)."""
    from kit.data.cache import open_cache
    from kit.config import Config, ModelConfig, PreprocessConfig
    from kit.training.pipeline import make_dataset
    from kit.training.train import compile_model

    cfg = Config(preprocess=PreprocessConfig(max_len=16), model=ModelConfig(name="llama_tiny"))
    val = held_out(odd_cache)
    x, _, w = next(iter(make_dataset(open_cache(odd_cache), val, cfg, training=False, batch_size=16, replicas=8)))
    model = compile_model(cfg, steps_per_epoch=1)
    guess = np.asarray(model.predict(x, verbose=0)).argmax(-1)
    right = np.arange(len(guess)) % 3 == 0
    right[len(val):] = True  # every padding row right: counted, they would lift the accuracy
    labels = np.eye(250, dtype=np.float32)[np.where(right, guess, (guess + 1) % 250)]
    accuracy = model.evaluate(x, labels, sample_weight=w.numpy(), verbose=0, return_dict=True)["accuracy"]
    assert w.numpy().tolist().count(0.0) == 1
    assert accuracy == pytest.approx(right[:len(val)].mean())


@pytest.mark.slow
def test_a_whole_fold_on_8_jax_devices(odd_cache, tmp_path):
    """Rule: under JAX's data parallelism over 8 devices (a TPU v5e-8's layout), a fold trains, validates and
    predicts every held-out sequence despite a remainder batch (15 = 8 + 7), and exports with every gate passing."""
    pytest.importorskip("jax", reason="jax is part of the test extra: pip install -e '.[test]'")
    run = tmp_path / "run"
    output = run_on_devices("jax", odd_cache, run, 12, 8)
    assert "DataParallel on 8 cpu devices" in output
    check_whole_fold(run, odd_cache, "8 x cpu", 8, 12, output)


@pytest.mark.slow
def test_a_whole_fold_on_2_mirrored_replicas(odd_cache, tmp_path):
    """Rule: under tf.distribute.MirroredStrategy over 2 replicas (a T4 x2's layout, here 2 logical CPU devices),
    a fold trains, validates and predicts every held-out sequence despite an odd count, and exports."""
    run = tmp_path / "run"
    output = run_on_devices("tf", odd_cache, run, 3, 4, "--strategy", "mirrored")
    assert "MirroredStrategy on 2 replicas (2 x cpu)" in output
    check_whole_fold(run, odd_cache, "2 x cpu", 2, 3, output)
