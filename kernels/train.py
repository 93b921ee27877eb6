"""The asl-signs training kernel: install the kit from its wheel, cache the competition's data, train folds, and
list every output file with its size and sha256, so that `kit kaggle train` can verify what it downloads.

On Kaggle it runs with no arguments: the wheel comes from the attached private dataset, the data from the
competition under /kaggle/input, and the run goes to /kaggle/working/run, the output Kaggle keeps. The cache stays in
scratch space, so the output holds only weights, histories and predictions (megabytes, far under Kaggle's 20 GB).

Locally, on a folder in the competition layout (or one holding it and a dataset folder with the wheel):

    python kernels/train.py --input DIR --output DIR [--folds 5] [--fold 0] [--set train.epochs=2]

`kit kaggle train` writes the job (wheel, folds or full fits, config, backend) into JOB; without one, the folds and
settings come from the command line and, with no wheel under --input, the installed kit trains. Each fold (or full
fit on every signer, `kind: full`) trains in its own `kit train` process and the manifest is rewritten after each,
so a session that runs out of time still hands over what it finished.
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
import zipfile
from pathlib import Path

JOB = None  # kit kaggle train writes the job here

MANIFEST = "kit-manifest.json"
RUN = "run"  # the run directory inside the output folder
MAX_OUTPUT_BYTES = 19 * 2**30  # Kaggle keeps 20 GB of a session's output; stay clear of it
KAGGLE_INPUT, KAGGLE_WORKING = Path("/kaggle/input"), Path("/kaggle/working")
DEPTHS = ("", "*/", "*/*/", "*/*/*/", "*/*/*/*/")  # how deep to look under the input; never walk 94,477 files
# Requires-Dist names whose import name differs, and those a training session does without: the image's own
# TensorFlow trains (never replace it with the CPU build), and neither the Kaggle client nor the TFLite interpreter
# is used before export.
IMPORT_NAMES = {"scikit-learn": "sklearn", "pillow": "PIL", "tensorflow-cpu": "tensorflow"}
NOT_FOR_TRAINING = {"kaggle", "ai-edge-litert"}


class KernelError(Exception):
    """The kernel cannot go on; the message says why and what to do."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shallow_glob(root: Path, pattern: str) -> list[Path]:
    return sorted({p for depth in DEPTHS for p in root.glob(depth + pattern)})


def find_wheel(root: Path, name: str | None, expected_sha: str | None) -> Path | None:
    """The kit wheel under `root`: the one the job names (checked by sha256), else the newest-named one, else None."""
    found = shallow_glob(root, "kit-*.whl")
    if name is None:
        return found[-1] if found else None
    named = [p for p in found if p.name == name]
    if not named:
        raise KernelError(f"no {name} under {root} (found {[p.name for p in found] or 'no kit wheel'}): the "
                          "dataset's new version may still be processing; run kit kaggle train again in a minute")
    if expected_sha and sha256(named[0]) != expected_sha:
        raise KernelError(f"{named[0]}: sha256 differs from the wheel kit kaggle train uploaded; run it again")
    return named[0]


def install(wheel: Path, lib: Path) -> Path:
    """A pure-Python wheel installs by unpacking it; `lib` then goes first on PYTHONPATH."""
    marker = lib / ".kit-wheel"
    if not (marker.is_file() and marker.read_text() == wheel.name):
        with zipfile.ZipFile(wheel) as zf:
            bad = [n for n in zf.namelist() if n.startswith("/") or ".." in n.split("/")]
            if bad:
                raise KernelError(f"{wheel}: entry {bad[0]!r} would land outside {lib}")
            zf.extractall(lib)
        marker.write_text(wheel.name)
    print(f"kit: installed {wheel.name} into {lib}", flush=True)
    return lib


def requirements(lib: Path) -> list[str]:
    """The Requires-Dist lines of the unpacked wheel (extras excluded)."""
    lines = []
    for meta in lib.glob("kit-*.dist-info/METADATA"):
        lines += [line.split(":", 1)[1].strip() for line in meta.read_text().splitlines()
                  if line.startswith("Requires-Dist:") and "extra ==" not in line]
    return lines


def _dist_name(requirement: str) -> str:
    name = requirement
    for stop in "<>=!~;[ (":
        name = name.split(stop)[0]
    return name.strip().lower()


def missing(lines: list[str]) -> list[str]:
    """The requirements a training session needs and cannot import here."""
    import importlib.util

    out = []
    for line in lines:
        dist = _dist_name(line)
        if dist in NOT_FOR_TRAINING:
            continue
        module = IMPORT_NAMES.get(dist, dist.replace("-", "_"))
        if importlib.util.find_spec(module) is None:
            out.append(line)
    return out


def add_missing(lib: Path, may_install: bool) -> None:
    needed = missing(requirements(lib))
    if not needed:
        return
    if any(_dist_name(r) == "tensorflow-cpu" for r in needed):
        raise KernelError("this image has no TensorFlow: pick a Kaggle image with it (leave docker_image unset)")
    if not may_install:
        raise KernelError(f"this image lacks {needed} and the kernel has no internet: turn internet on "
                          "(kit kaggle train does by default) or add them as a dataset of wheels")
    print(f"kit: installing what the image lacks: {' '.join(needed)}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *needed], check=True)


def find_competition(root: Path) -> Path:
    """The competition folder under `root`: train.csv beside the sign map (Kaggle mounts it at
    /kaggle/input/asl-signs or /kaggle/input/competitions/asl-signs, depending on the image)."""
    for csv_path in shallow_glob(root, "train.csv"):
        if (csv_path.parent / "sign_to_prediction_index_map.json").is_file():
            return csv_path.parent
    raise KernelError(f"no train.csv with sign_to_prediction_index_map.json under {root}: attach the asl-signs "
                      "competition to the kernel (competition_sources)")


def run_kit(args: list[str], env: dict) -> None:
    print(f"$ kit {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "kit", *args], env=env)
    if proc.returncode != 0:
        raise KernelError(f"kit {args[0]} exited with status {proc.returncode} (its messages are above)")


def finished(run: Path, kind: str, k: int) -> bool:
    """RUN/fold{K} (or RUN/full{K}) holds its metrics.json: kit train's mark of a finished one."""
    return (run / f"{kind}{k}" / "metrics.json").is_file()


def write_manifest(output: Path, kind: str, folds: list[int], info: dict) -> dict:
    """OUTPUT/kit-manifest.json: size and sha256 of every file a finished fold (or full fit) needs (run-level
    config and folds too), written atomically; what kit kaggle train downloads and verifies."""
    run = output / RUN
    done = [k for k in folds if finished(run, kind, k)]
    paths = [run / "config.json", run / "folds.csv"]
    for k in done:
        paths += sorted(p for p in (run / f"{kind}{k}").rglob("*") if p.is_file() and "backup" not in p.parts)
    files = {p.relative_to(output).as_posix(): {"size": p.stat().st_size, "sha256": sha256(p)}
             for p in paths if p.is_file()}
    total = sum(f["size"] for f in files.values())
    if total > MAX_OUTPUT_BYTES:
        raise KernelError(f"the outputs hold {total / 2**30:.1f} GB; Kaggle keeps 20 GB of a session")
    manifest = {**info, "kind": kind, "folds_done": done, "files": files}
    tmp = output / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, output / MANIFEST)
    return manifest


def job_from_args(args: argparse.Namespace) -> dict:
    folds = args.fold or list(range(args.folds))
    return {"wheel": None, "wheel_sha256": None, "kind": "fold", "n_folds": args.folds, "folds": folds, "config": None,
            "recipe": args.recipe, "overrides": args.set or [], "backend": args.backend, "strategy": "auto",
            "internet": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=KAGGLE_INPUT, help="the competition (and the wheel) under it")
    parser.add_argument("--output", type=Path, default=KAGGLE_WORKING, help="the run and the manifest go here")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="the cache and the unpacked kit go here (default: a new temp folder, removed at the end)")
    parser.add_argument("--folds", type=int, default=5, help="without a job: GroupKFold folds")
    parser.add_argument("--fold", type=int, action="append", help="without a job: train only this fold")
    parser.add_argument("--recipe", default=None, help="without a job: a kit recipe")
    parser.add_argument("--set", action="append", help="without a job: a kit config override")
    parser.add_argument("--backend", default=None, help="without a job: KERAS_BACKEND (tensorflow or jax)")
    args = parser.parse_args(argv)
    job = JOB or job_from_args(args)
    start = time.time()
    output = args.output.resolve()
    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="kit-scratch-"))).resolve()
    output.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        wheel = find_wheel(args.input, job["wheel"], job["wheel_sha256"])
        if wheel is not None:
            lib = install(wheel, scratch / "kitlib")
            add_missing(lib, job["internet"])
            env["PYTHONPATH"] = os.pathsep.join([str(lib), *filter(None, [env.get("PYTHONPATH")])])
        else:
            print("kit: no kit wheel under the input; using the installed kit", flush=True)
        if job["backend"]:
            env["KERAS_BACKEND"] = job["backend"]
        data = find_competition(args.input)
        print(f"kit: competition data {data}; folds {job['folds']} of {job['n_folds']}", flush=True)
        run_kit(["prepare", "--data", str(data), "--cache", str(scratch / "cache")], env)
        kind = job.get("kind", "fold")
        train = ["train", "--cache", str(scratch / "cache"), "--out", str(output / RUN)]
        if job["config"] is not None:
            (scratch / "config.json").write_text(json.dumps(job["config"], indent=2))
            train += ["--config", str(scratch / "config.json")]
        elif job["recipe"]:
            train += ["--recipe", job["recipe"]]
        for override in job["overrides"]:
            train += ["--set", override]
        if kind == "full":  # full fits on every signer: n_folds counts the seeds, each one its own --member
            train += ["--full", "--epochs", str(job["config"]["train"]["epochs"]), "--seeds", str(job["n_folds"])]
        else:
            train += ["--folds", str(job["n_folds"])]
        train += ["--strategy", job["strategy"]]
        info = {"wheel": wheel.name if wheel else None, "n_folds": job["n_folds"], "folds": job["folds"],
                "seconds": {}}
        for k in job["folds"]:
            began = time.time()
            if not finished(output / RUN, kind, k):
                run_kit([*train, "--member" if kind == "full" else "--fold", str(k)], env)
            info["seconds"][str(k)] = round(time.time() - began, 1)
            manifest = write_manifest(output, kind, job["folds"], info)
            print(f"kit: {kind}{k} done in {info['seconds'][str(k)]:.0f} s; manifest lists "
                  f"{len(manifest['files'])} files", flush=True)
    except (KernelError, subprocess.CalledProcessError) as err:
        print(f"KIT ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"kit: {job.get('kind', 'fold')}s {job['folds']} trained in {time.time() - start:.0f} s; outputs in {output}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
