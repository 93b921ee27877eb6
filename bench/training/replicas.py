"""One fold on 1 device and on 8 simulated JAX devices (a TPU v5e-8's layout): the same OOF count, and accuracy
within noise, since train.batch_size is the global batch whatever the replicas.

    python bench/training/replicas.py [--signs 7 --signers 4 --per-sign 6 --epochs 8] [--workdir DIR]

Both runs train the same config on the same synthetic cache under KERAS_BACKEND=jax, one with 1 CPU device and one
with XLA_FLAGS=--xla_force_host_platform_device_count=8 (set before JAX is imported, so each run is its own `kit
train` process). The held-out count is chosen by the data, so its last batch does not split 8 ways. Prints, per
device count: OOF sequences, OOF accuracy, best epoch and seconds; and the 8-device run's accuracy minus the
1-device one's. The numbers of 8 simulated devices share the same 2 cores: their time says nothing of a TPU's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def kit(*args, env=None) -> None:
    proc = subprocess.run([sys.executable, "-m", "kit", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    if proc.returncode != 0:
        sys.exit(f"kit {args[0]} failed:\n{proc.stdout}{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signs", type=int, default=7)  # 7 x 4 x 6: 84 held-out, 84 % 8 = 4 pads the last batch
    parser.add_argument("--signers", type=int, default=4)
    parser.add_argument("--per-sign", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kit-replicas-"))
    if not (work / "cache").is_dir():
        kit("synth", "--out", work / "data", "--signs", args.signs, "--participants", args.signers,
            "--per-sign", args.per_sign)
        kit("prepare", "--data", work / "data", "--cache", work / "cache", "--workers", "1")
    train = ["train", "--cache", work / "cache", "--folds", "2", "--fold", "0", "--epochs", args.epochs,
             "--model", "llama_tiny", "--set", "preprocess.max_len=32", "--set", f"train.batch_size={args.batch}",
             "--set", "train.learning_rate=0.002", "--set", "train.min_learning_rate=0.00002",
             "--set", "train.warmup_epochs=1"]
    results = {}
    for devices in (1, 8):
        run = work / f"run{devices}"
        env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        start = time.time()
        kit(*train, "--out", run, env=env)
        oof = np.load(run / "fold0" / "oof.npz")
        metrics = json.loads((run / "fold0" / "metrics.json").read_text())
        results[devices] = {"oof_sequences": len(oof["probs"]), "held_out": metrics["val_sequences"],
                            "accuracy": float(np.mean(oof["probs"].argmax(-1) == oof["labels"])),
                            "best_epoch": metrics["best_epoch"], "devices": metrics["devices"],
                            "seconds": round(time.time() - start, 1)}
        r = results[devices]
        print(f"{r['devices']:>8}: {r['oof_sequences']} OOF of {r['held_out']} held-out sequences "
              f"({r['held_out'] % 8} in the last 8-way batch), accuracy {r['accuracy']:.3f}, best epoch "
              f"{r['best_epoch']}, {r['seconds']:.0f} s", flush=True)
    one, eight = results[1], results[8]
    print(f"same OOF count: {one['oof_sequences'] == eight['oof_sequences'] == one['held_out']}; accuracy 8 - 1 "
          f"devices: {eight['accuracy'] - one['accuracy']:+.3f} (chance {1 / args.signs:.3f}); time ratio 8/1: "
          f"{eight['seconds'] / one['seconds']:.2f} (8 simulated devices share the same cores)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
