"""Does the scorer's runtime get anything from XNNPACK? tflite-runtime 2.14.0 against ai-edge-litert, in one run.

The scorer runs `model.tflite` with tflite_runtime 2.9.1, which has no wheel for the Python here; 2.14.0, the
nearest that installs, goes into a venv of its own (numpy<2, as its wheel needs). Both runtimes time the same
graphs, on one thread, through the signature runner as the scorer calls it, with the default delegate (XNNPACK)
and with plain builtin kernels, the input's length fixed or changing from call to call:

- a toy: 20 matmuls of 256 x 256 on `[n, 256]` (the most XNNPACK can win: nothing but matmuls);
- the kit's exported ensemble: 3 x llama_small at their real lengths, as `kit export` writes it.

What it showed (2026-12-03, 2 cores, 80 calls): ai-edge-litert gains 3.1-3.3x from XNNPACK on the kit's ensemble,
fixed length or not; tflite-runtime 2.14 gains nothing (0.9-1.0x), as the graph has sizes learned while it runs
(kit.contract.tflite.sized_when_run: frames without a hand are dropped). A variant with every size known up front (those
frames masked instead, tried the same day) gained 2.7x at a fixed length but 1.2x (20.9 vs 25.3 ms) with the
length changing from call to call, as on Kaggle, where the delegate is prepared anew for each length; and it ran
up to 10x the frames on real files (65% of the frames of the ten real samples have no hand). So the kit keeps
dropping them, and the export's latency gate judges plain kernels (kit.contract.tflite.SCORER_KERNELS).

    python bench/contract/scorer_runtime.py                     # builds the venv on first use (~/.cache/kit/...)
    python bench/contract/scorer_runtime.py --calls 100
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENV = Path.home() / ".cache" / "kit" / "tflite-runtime-2.14"
PINS = ["tflite-runtime==2.14.0", "numpy<2"]

# Run by each runtime's Python: prints {graph: {mode: {kind: mean ms}}} as JSON.
TIMER = r'''
import json, sys, time
import numpy as np
try:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
except ImportError:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
graphs, lengths, calls = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
out = {}
for name, (path, width) in graphs.items():
    model = open(path, "rb").read()
    def inputs(n):
        x = rng.uniform(0.3, 0.7, size=(n, *width)).astype(np.float32)
        if len(width) == 2:
            x[:, 468:489] = np.nan  # the left hand out of view, as in most real frames
        return x
    out[name] = {}
    for mode in ("fixed", "changing"):
        sizes = [lengths[len(lengths) // 2]] * calls if mode == "fixed" else (lengths * calls)[:calls]
        batch = [inputs(n) for n in sizes]
        for kind, resolver in (("xnnpack", OpResolverType.AUTO),
                               ("builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)):
            interp = Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=resolver)
            interp.allocate_tensors()  # applies the default delegate, where the runtime has one
            run = interp.get_signature_runner("serving_default")
            run(inputs=batch[0])
            start = time.perf_counter()
            for x in batch:
                run(inputs=x)
            out[name].setdefault(mode, {})[kind] = (time.perf_counter() - start) * 1000 / len(batch)
print(json.dumps(out))
'''


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        # tflite-runtime 2.14 has wheels for CPython 3.9 to 3.11 only: under 3.12, python3.11 on PATH
        base = sys.executable if sys.version_info[:2] <= (3, 11) else shutil.which("python3.11")
        if base is None:
            raise SystemExit(f"building {venv} needs Python 3.11 or older: no python3.11 on PATH")
        print(f"building {venv} ({', '.join(PINS)}) with {base}", flush=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    return python


def toy_graph(path: Path) -> None:
    import numpy as np
    import tensorflow as tf

    weights = [tf.constant(np.random.default_rng(k).normal(size=(256, 256)).astype(np.float32) / 16)
               for k in range(20)]

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32, name="inputs")])
        def serve(self, x):
            for w in weights:
                x = tf.nn.relu(x @ w)
            return {"outputs": x}

    toy = Toy()
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(toy, tmp, signatures={"serving_default": toy.serve.get_concrete_function()})
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"]).convert())


def ensemble_graph(path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from latency import build_run

    from kit.config import Config
    from kit.contract.export import convert, load_ensemble

    base = Config()
    with tempfile.TemporaryDirectory() as tmp:
        folds = build_run(Path(tmp) / "run", base, base.model.name, base.preprocess.max_len, 3)
        path.write_bytes(convert(load_ensemble(folds)))


def main() -> None:
    from kit import quiet

    quiet.install()  # TF's start-up and converter logs off the terminal, as under kit's commands

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=VENV, help=f"the tflite-runtime 2.14 venv (default {VENV})")
    parser.add_argument("--calls", type=int, default=60, help="calls timed per graph, mode and kernels")
    args = parser.parse_args()
    old_python = ensure_venv(args.venv)

    from kit.contract.gates import real_lengths
    from kit.data.landmarks import N_LANDMARKS

    lengths = [min(n, 200) for n in real_lengths(args.calls)]
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"toy (20 matmuls)": (str(Path(tmp) / "toy.tflite"), [256]),
                  "3 x llama_small": (str(Path(tmp) / "ensemble.tflite"), [N_LANDMARKS, 3])}
        toy_graph(Path(graphs["toy (20 matmuls)"][0]))
        ensemble_graph(Path(graphs["3 x llama_small"][0]))
        results = {}
        for runtime, python in (("tflite-runtime 2.14.0", old_python), ("ai-edge-litert", Path(sys.executable))):
            done = subprocess.run([str(python), "-c", TIMER, json.dumps(graphs), json.dumps(lengths),
                                   str(args.calls)], capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{runtime} failed: {done.stderr.strip().splitlines()[-1]}")
            results[runtime] = json.loads(done.stdout.strip().splitlines()[-1])

        from kit.contract.tflite import sized_when_run

        for name, (path, _) in graphs.items():
            late, origins = sized_when_run(Path(path).read_bytes())
            where = f" (from {', '.join(origins)})" if late else ""
            print(f"{name}: {late} tensors sized only while it runs{where}")
    print(f"\nmean ms per call, 1 thread, {args.calls} calls; 'changing': lengths of kit synth --like-competition")
    print(f"{'runtime':22} {'graph':18} {'length':9} {'xnnpack':>8} {'builtin':>8} {'gain':>6}")
    for runtime, graphs_out in results.items():
        for graph, modes in graphs_out.items():
            for mode, ms in modes.items():
                print(f"{runtime:22} {graph:18} {mode:9} {ms['xnnpack']:8.2f} {ms['builtin']:8.2f} "
                      f"{ms['builtin'] / ms['xnnpack']:5.2f}x")


if __name__ == "__main__":
    main()
