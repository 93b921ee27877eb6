"""Run a job of .github/workflows/ci.yml as GitHub would, on this machine: each step as written, in a fresh clone.

    python .ci/workflow.py tests --matrix python=3.12     # one matrix entry (without --matrix: each in turn)
    python .ci/workflow.py kaggle-parity
    python .ci/workflow.py tests --repo /path/to/checkout --work /tmp/wf --keep

What GitHub provides is emulated, nothing else: actions/checkout is `git clone` of the repository's committed HEAD
(uncommitted changes are not in it, as they would not be pushed); actions/setup-python is a venv of each version it
names (python3.X found on PATH), the last one named first on PATH, as setup-python makes it the default `python`;
the environment is the workflow's and the job's `env:` with CI=true and GITHUB_ACTIONS=true, without this shell's
virtual environment. Every `run:` step runs in bash -eo pipefail from the clone's root, as GitHub's default shell
does; the job stops at the first step that fails. Each step's output goes to WORK/<entry>/<NN-step>.log, and a line
per step gives its exit code and time. Exits with the failing step's exit code, or 0.

Needs PyYAML (in kit's test extra). tests/test_workflow.py checks the workflow without running it: this script is
for measuring that each job passes as written (minutes: the tests job ~15 on 2 cores, kaggle-parity ~8).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
EXPRESSION = re.compile(r"\$\{\{\s*matrix\.(\w+)\s*\}\}")


def combinations(job: dict, chosen: dict[str, str]) -> list[dict[str, str]]:
    """The job's matrix entries (each a dict), those matching --matrix KEY=VALUE only; [{}] without a matrix."""
    matrix = job.get("strategy", {}).get("matrix", {})
    keys = [k for k in matrix if k not in ("include", "exclude")]
    entries = [dict(zip(keys, map(str, values))) for values in itertools.product(*(matrix[k] for k in keys))]
    picked = [e for e in entries if all(e.get(k) == v for k, v in chosen.items())]
    if not picked:
        raise SystemExit(f"no matrix entry matches {chosen}: the job's are {entries}")
    return picked


def expand(text: str, entry: dict[str, str]) -> str:
    return EXPRESSION.sub(lambda m: entry[m[1]], text)


def base_env() -> dict[str, str]:
    """This shell's environment without its virtual environment (its bin dir off PATH) or PYTHONPATH."""
    env = dict(os.environ)
    venvs = {env.pop("VIRTUAL_ENV", None), sys.prefix if sys.prefix != sys.base_prefix else None} - {None}
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not any(p.startswith(v) for v in venvs))
    return env


def find_python(version: str, env: dict[str, str]) -> str:
    """An interpreter of this version: python3.X on PATH if it runs (a pyenv shim of a version not selected does
    not), else pyenv's own build of it."""
    pyenv = Path(env.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{version}", path=env["PATH"])]
    candidates += sorted(map(str, pyenv.glob(f"{version}*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, env=env)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise SystemExit(f"setup-python: no python{version} here (on PATH or in {pyenv})")


def setup_python(versions: list[str], work: Path, env: dict[str, str]) -> list[str]:
    """A venv per version, named after it; returns their bin dirs, the last version's first (the default python)."""
    bins = []
    for version in versions:
        interpreter = find_python(version, env)
        venv = work / f"python{version}"
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, env=env)
        bins.append(str(venv / "bin"))
    return bins[::-1]


def run_job(job_id: str, job: dict, top_env: dict, entry: dict[str, str], repo: Path, work: Path) -> int:
    label = job_id + "".join(f" ({k}={v})" for k, v in entry.items())
    work.mkdir(parents=True)
    clone = work / "clone"
    env = {**base_env(), **{k: str(v) for k, v in {**top_env, **job.get("env", {})}.items()},
           "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(clone)}
    print(f"job {label}: in {work}", flush=True)
    results, started_job = [], time.perf_counter()
    for k, step in enumerate(job["steps"], 1):
        uses, name = step.get("uses", ""), step.get("name") or step.get("uses") or f"step {k}"
        log = work / f"{k:02d}-{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')}.log"
        started = time.perf_counter()
        if uses.startswith("actions/checkout@"):
            code = subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], env=env).returncode
        elif uses.startswith("actions/setup-python@"):
            versions = expand(str(step.get("with", {}).get("python-version", "")), entry).split()
            env["PATH"] = os.pathsep.join(setup_python(versions, work, env) + [env["PATH"]])
            code = 0
        elif "run" in step:
            script = expand(step["run"], entry)
            step_env = {**env, **{k: str(v) for k, v in step.get("env", {}).items()}}
            with log.open("w") as out:
                code = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                      cwd=clone / step.get("working-directory", "."), env=step_env, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        else:
            raise SystemExit(f"{label}: step {name!r} uses {uses}, which this script does not emulate")
        seconds = time.perf_counter() - started
        results.append((name, code, seconds))
        tail = f"  (log: {log})" if "run" in step else ""
        print(f"  {name}: exit {code} in {seconds:.0f} s{tail}", flush=True)
        if code != 0:
            if log.is_file():
                print("".join(log.read_text().splitlines(keepends=True)[-30:]), flush=True)
            break
    total = time.perf_counter() - started_job
    failed = next((c for _, c, _ in results if c != 0), 0)
    print(f"job {label}: {'passed' if not failed else f'FAILED (exit {failed})'} in {total / 60:.1f} min", flush=True)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", help="a job id of ci.yml: tests, kaggle-parity")
    parser.add_argument("--matrix", action="append", default=[], metavar="KEY=VALUE",
                        help="run only the matrix entries with this value (repeatable)")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the repository to clone (default: this one)")
    parser.add_argument("--work", type=Path, help="folder for the clone, venvs and logs (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    workflow = yaml.safe_load(WORKFLOW.read_text())
    if args.job not in workflow["jobs"]:
        parser.error(f"no job {args.job!r} in {WORKFLOW.name}: {', '.join(workflow['jobs'])}")
    job = workflow["jobs"][args.job]
    chosen = dict(item.split("=", 1) for item in args.matrix)
    work = args.work or Path(tempfile.mkdtemp(prefix=f"kit-workflow-{args.job}-"))
    code = 0
    try:
        for n, entry in enumerate(combinations(job, chosen)):
            code = run_job(args.job, job, workflow.get("env", {}), entry, args.repo.resolve(), work / str(n)) or code
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
