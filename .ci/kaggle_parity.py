"""Kaggle-image parity: both rendered training kernels, run end to end in a venv of Kaggle's own package versions.

What `kit kaggle train` sends has to run on Kaggle's images, whose TensorFlow, Keras, JAX, NumPy and pandas are
older than kit's own pins. This script checks that without Kaggle:

1. builds a venv (Python 3.12, as the images) from .ci/kaggle-gpu-image.txt, without kit in it;
2. makes one small synthetic competition (kit synth) and renders the two kernels with
   `kit kaggle train --dry-run`: T4 x2 (TensorFlow backend) and TPU v5e-8 (JAX backend), same config;
3. runs each rendered train.py with that venv's python, `python train.py --input IN --output OUT`, the wheel
   dataset and the competition under IN as Kaggle mounts them: kit comes only from its wheel. The TPU kernel runs on
   8 simulated JAX devices (XLA_FLAGS=--xla_force_host_platform_device_count=8 with the venv's jax CPU wheel), the
   way a v5e-8 splits every batch over 8 cores;
4. collects each kernel's outputs into its run as kit kaggle train does (only the files the kernel's manifest
   lists, sha256 checked), then `kit cv` and `kit export` (with kit's own environment, as on the user's machine):
   every export gate must pass.

It prints each kernel's wall time and CV accuracy on the same set, and exits 1 on the first failure.

    python .ci/kaggle_parity.py [--work DIR] [--python /path/to/python3.12] [--keep]

Run it from kit's own environment (kit importable, its CLI on PATH is not needed). It needs a package index for
the venv (about 2 minutes to build; reused when DIR/venv already holds the same pins).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / ".ci" / "kaggle-gpu-image.txt"
# Kit's other requirements, all present in Kaggle's images (their versions are the image's, not pinned here).
IMAGE_ALSO_HAS = ["scikit-learn", "typer", "rich", "matplotlib", "pillow", "tensorboard"]
SIGNS, SIGNERS, PER_SIGN, FOLDS = 6, 4, 5, 2  # 120 sequences; each fold holds out 2 signers (60: 60 % 8 = 4)
# A tiny model trained briefly: enough to leave chance behind, small enough for a CI runner's 2 cores. The global
# batch (16) splits over 1, 2 and 8 replicas: the same recipe on both kernels.
SETTINGS = ["--model", "llama_tiny", "--epochs", "6", "--set", "preprocess.max_len=32", "--set", "train.batch_size=16",
            "--set", "train.learning_rate=0.002", "--set", "train.min_learning_rate=0.00002",
            "--set", "train.warmup_epochs=1", "--set", "train.label_smoothing=0.1"]
KERNELS = {"t4": {}, "tpu": {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}}


class ParityError(Exception):
    pass


def sh(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    print("$", " ".join(map(str, cmd)), flush=True)
    proc = subprocess.run(list(map(str, cmd)), **kwargs)
    if proc.returncode != 0:
        raise ParityError(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} exited {proc.returncode}")
    return proc


def kit(*args, **kwargs) -> subprocess.CompletedProcess:
    """kit's CLI from kit's own environment (this interpreter)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **kwargs.pop("env", {})}
    return sh([sys.executable, "-m", "kit", *args], env=env, **kwargs)


def build_venv(venv: Path, python: str) -> Path:
    """A venv of the image's pins (and kit's other requirements); none of kit. Reused when its pins match."""
    stamp = venv / "kit-parity-pins.txt"
    wanted = PINS.read_text() + "\n".join(IMAGE_ALSO_HAS)
    if not (stamp.is_file() and stamp.read_text() == wanted):
        shutil.rmtree(venv, ignore_errors=True)
        sh([python, "-m", "venv", venv])
        pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        sh([*pip, "-r", PINS, *IMAGE_ALSO_HAS, "-c", PINS])
        stamp.write_text(wanted)
    py = venv / "bin" / "python"
    probe = ("import sys, importlib.util as u, tensorflow, keras, jax, numpy, pandas\n"
             "assert u.find_spec('kit') is None, 'kit must come only from its wheel'\n"
             "print(f'parity venv: Python {sys.version.split()[0]}, tensorflow {tensorflow.__version__}, keras '\n"
             "      f'{keras.__version__}, jax {jax.__version__}, numpy {numpy.__version__}, pandas {pandas.__version__}')")
    sh([py, "-c", probe], cwd=tempfile.gettempdir(), env=venv_env())
    return py


def venv_env(**extra: str) -> dict:
    """The environment the venv's python runs in: nothing that would put kit's checkout or another backend in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND", "XLA_FLAGS")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **extra}


def kernel_input(work: Path, run: Path) -> Path:
    """IN/asl-signs (the competition) and IN/asl-signs-kit-wheel (the rendered wheel dataset), as Kaggle mounts."""
    inputs = work / f"input-{run.name}"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir()
    (inputs / "asl-signs").symlink_to(work / "data", target_is_directory=True)
    shutil.copytree(run / "kaggle" / "dataset", inputs / "asl-signs-kit-wheel")
    return inputs


def collect(output: Path, run: Path) -> list[int]:
    """Bring the kernel's finished folds into the run: the files its manifest lists, sha256 checked, as kit kaggle
    train does with a finished kernel's output."""
    from kit.kaggle.output import MANIFEST, target_path, wanted_files

    manifest = json.loads((output / MANIFEST).read_text())
    for name, meta in wanted_files(manifest, manifest["folds"]):
        data = (output / name).read_bytes()
        if len(data) != meta["size"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ParityError(f"{output / name}: differs from the kernel's manifest")
        (run / target_path(name)).parent.mkdir(parents=True, exist_ok=True)
        (run / target_path(name)).write_bytes(data)
    return manifest["folds_done"]


def run_kernel(accelerator: str, py: Path, work: Path) -> dict:
    run = work / f"run-{accelerator}"
    shutil.rmtree(run, ignore_errors=True)
    kit("kaggle", "train", "--out", run, "--folds", FOLDS, "--accelerator", accelerator, "--dry-run", *SETTINGS)
    kernels = sorted((run / "kaggle" / "kernels").iterdir())
    output = work / f"output-{accelerator}"
    shutil.rmtree(output, ignore_errors=True)
    env = venv_env(**KERNELS[accelerator])
    start = time.time()
    for folder in kernels:  # one kernel per fold at --parallel 2 (t4); one for both folds on tpu
        sh([py, folder / "train.py", "--input", kernel_input(work, run), "--output", output / folder.name],
           cwd=output.parent, env=env)
    seconds = time.time() - start
    done = sorted(k for folder in kernels for k in collect(output / folder.name, run))
    if done != list(range(FOLDS)):
        raise ParityError(f"the {accelerator} kernels finished folds {done}, not all {FOLDS}")
    devices = {json.loads((run / f"fold{k}" / "metrics.json").read_text()).get("devices") for k in done}
    kit("cv", run)
    kit("export", run, "--top", "1")
    export = json.loads((run / "export" / "export.json").read_text())
    if not export["passed"]:
        raise ParityError(f"kit export {run}: gates failed: {[g['name'] for g in export['gates'] if not g['ok']]}")
    cv = json.loads((run / "cv.json").read_text())
    return {"kernels": len(kernels), "seconds": round(seconds, 1), "cv_accuracy": cv["oof_accuracy"],
            "oof_sequences": cv["n_sequences"], "chance": cv["chance"], "devices": sorted(filter(None, devices))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a new temp folder)")
    parser.add_argument("--python", default=os.environ.get("KAGGLE_PYTHON", "python3.12"),
                        help="a Python 3.12, as Kaggle's images run (default: python3.12, or $KAGGLE_PYTHON)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (a temp one is removed)")
    args = parser.parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="kit-parity-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    began = time.time()
    try:
        t = time.time()
        py = build_venv(work / "venv", args.python)
        venv_seconds = time.time() - t
        if not (work / "data" / "train.csv").is_file():
            kit("synth", "--out", work / "data", "--signs", SIGNS, "--participants", SIGNERS, "--per-sign", PER_SIGN)
        results = {accelerator: run_kernel(accelerator, py, work) for accelerator in KERNELS}
    except ParityError as err:
        print(f"PARITY FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"venv: {venv_seconds:.0f} s; whole check: {time.time() - began:.0f} s")
    for accelerator, r in results.items():
        print(f"{accelerator} kernel(s) in the parity venv: {r['kernels']} kernel(s), {r['seconds']:.0f} s, "
              f"CV {r['cv_accuracy']:.3f} over {r['oof_sequences']} OOF sequences (chance {r['chance']:.3f}), "
              f"trained on {', '.join(r['devices'])}; kit export: every gate passed")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
