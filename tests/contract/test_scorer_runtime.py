"""The exported graph in the runtime nearest the scorer's: tflite-runtime 2.14.0, in a venv of its own.

The scorer runs tflite_runtime 2.9.1, which has no wheel for this Python; 2.14.0 is the nearest that installs (it
needs numpy<2, so it cannot share the kit's venv, and it has wheels for CPython 3.9 to 3.11 only: under 3.12 the venv
is built from python3.11 on PATH, which GitHub's tests job sets up for it). The venv is built on first use
(~/.cache/kit, as bench/contract/scorer_runtime.py builds it), whole or not at all; under CI=true a failure to build
it fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.environment import user_home
from tests.runs import fake_run

# In the user's own home (the suite runs in a home of its own: tests/environment.py), where the bench builds it too
VENV = Path(os.environ.get("KIT_SCORER_VENV", user_home() / ".cache" / "kit" / "tflite-runtime-2.14"))
PINS = ["tflite-runtime==2.14.0", "numpy<2"]

RUN = r'''
import json, sys
import numpy as np
from tflite_runtime.interpreter import Interpreter
model, inputs = open(sys.argv[1], "rb").read(), np.load(sys.argv[2])
interp = Interpreter(model_content=model, num_threads=1)
interp.allocate_tensors()
run = interp.get_signature_runner("serving_default")
outputs = [run(inputs=inputs[k])["outputs"].tolist() for k in sorted(inputs.files, key=int)]
print(json.dumps({"outputs": outputs}))
'''


def base_python() -> str | None:
    """A Python that tflite-runtime 2.14 has wheels for (CPython 3.9 to 3.11): this one, else python3.11 on PATH."""
    return sys.executable if sys.version_info[:2] <= (3, 11) else shutil.which("python3.11")


def runs(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", "import tflite_runtime"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def scorer_python() -> Path:
    python = VENV / "bin" / "python"
    if not runs(python):
        building = VENV.with_name(f"{VENV.name}.partial-{os.getpid()}")  # renamed to VENV once whole
        shutil.rmtree(building, ignore_errors=True)
        try:
            base = base_python()
            if base is None:
                raise RuntimeError("no python3.11 on PATH (tflite-runtime 2.14 has no wheel for Python "
                                   f"{sys.version_info[0]}.{sys.version_info[1]})")
            subprocess.run([base, "-m", "venv", str(building)], check=True, capture_output=True)
            subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q", *PINS], check=True,
                           capture_output=True, env={**os.environ, "HOME": str(user_home())})  # pip's own config
        except (subprocess.CalledProcessError, RuntimeError) as err:
            detail = err.stderr.decode().strip()[-300:] if isinstance(err, subprocess.CalledProcessError) else err
            message = f"cannot build {VENV} ({', '.join(PINS)}): {detail}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
        if not runs(python):  # another process may have built it meanwhile
            shutil.rmtree(VENV, ignore_errors=True)
            building.rename(VENV)
        shutil.rmtree(building, ignore_errors=True)
    return python


def test_every_model_and_feature_option_runs_in_the_scorer_runtime(tmp_path, scorer_python):
    """One graph of llama, conv_transformer and an mlp with every feature option: tflite-runtime 2.14 loads it
    and answers as the kit's interpreter does, the input length changing from call to call, 1 to 500 frames.
    (It applies no XNNPACK to this graph: frames without a hand are dropped, so sizes are learned while it runs;
    the latency gate judges plain kernels for that reason and others, kit.contract.tflite.SCORER_KERNELS.)"""
    from kit.contract.export import convert, load_ensemble
    from kit.contract.gates import plausible_frames
    from kit.contract.tflite import contract_runner, interpreter

    options = dict(dominant_hand=True, shoulder_unit=True, distances=True, angles=True, motion=True, trim_idle=True)
    folds = [fake_run(tmp_path / "llama", model_names=("llama_tiny",)) / "fold0",
             fake_run(tmp_path / "conv", model_names=("conv_transformer_tiny",)) / "fold0",
             fake_run(tmp_path / "mlp", model_names=("mlp",), **options) / "fold0"]
    model = convert(load_ensemble(folds))
    (tmp_path / "model.tflite").write_bytes(model)
    rng = np.random.default_rng(0)
    inputs = {str(k): plausible_frames(rng, n) for k, n in enumerate((1, 7, 18, 33, 31, 64, 500))}
    np.savez(tmp_path / "inputs.npz", **inputs)
    done = subprocess.run([str(scorer_python), "-c", RUN, str(tmp_path / "model.tflite"), str(tmp_path / "inputs.npz")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ours = contract_runner(interpreter(model))
    for k, frames in inputs.items():
        np.testing.assert_allclose(np.reshape(result["outputs"][int(k)], -1), ours(frames), atol=1e-5)
