"""The environment the suite runs in: set by the suite, never inherited from whoever started it.

The suite passes wherever it is started: from a terminal or from a script, in the foreground or in the background
(`.ci/run` starts it with SIGINT ignored and no terminal), on a busy 2-core machine, by a user whose shell and home
hold their own Kaggle, Keras and terminal settings. So what a test relies on is set here:

- `normalise_environment()` (conftest.py's `pytest_configure`, once per session, before anything imports Keras,
  TensorFlow or Typer, which read some of it at import; pytest-xdist's workers and every subprocess inherit it):
  the variables below, a home of the suite's own, and SIGCHLD at its default.
- `command(..., sigint=...)`: a child started with the signal handling a test needs, whatever this process
  inherited (a process started by a non-interactive shell in the background inherits SIGINT ignored, and exec
  keeps an ignored signal ignored, so Python then never raises KeyboardInterrupt in it).
- `wait_for` and `finished`: waits on an event or a file, with a generous deadline that fails saying what it
  waited for, never a fixed sleep that a busy machine can outrun.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

# Each read by the kit or a library it uses, and each a setting of the user's, not the suite's: their Kaggle account
# (credentials, the config folder, a Kaggle kernel's own variables), their Keras backend and home (keras.json names
# a backend and a float type), JAX's and XLA's devices and flags (XLA_FLAGS' simulated device count splits the
# batch), TensorFlow's log level and oneDNN switch (the kit's default level is what a new user gets), their MLflow
# server, matplotlib's backend and config, what a terminal or a CI runner tells Rich and Typer (GITHUB_ACTIONS,
# FORCE_COLOR and PY_COLORS make Typer colour its errors; COLUMNS and LINES size Rich's help and kit runs' table),
# and Python's warnings-as-errors and safe path (`python -m kit` run in a checkout would import another kit).
# A test that needs one sets it.
DROPPED_PREFIXES = ("KAGGLE_", "KERAS_", "JAX_", "XLA_", "TF_", "MLFLOW_", "MPL")
DROPPED = ("CUDA_VISIBLE_DEVICES", "TPU_NAME", "COLUMNS", "LINES", "FORCE_COLOR", "PY_COLORS", "NO_COLOR",
           "CLICOLOR", "CLICOLOR_FORCE", "COLORTERM", "GITHUB_ACTIONS", "TERMINAL_WIDTH", "TTY_COMPATIBLE",
           "TTY_INTERACTIVE", "TYPER_USE_RICH", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "PYTHONWARNINGS", "PYTHONSAFEPATH")
# The suite's own switches, read on purpose (conftest.py and the tests that skip without an optional part):
# CI=true turns a missing part into a failure, KIT_SCORER_VENV places tflite-runtime's venv.
KEPT = ("CI", "KIT_SCORER_VENV")
SET = {
    "TERM": "dumb",  # no terminal features: what a test sees of a terminal, it asks for
    "TZ": "UTC",  # nothing reads the local time today; a test that one day does gets the same zone everywhere
    "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONUTF8": "1",  # the kit prints "±" and "—": UTF-8 everywhere
    "MPLBACKEND": "Agg",  # files, never a window
}
REAL_HOME = "KIT_TEST_REAL_HOME"  # where the user's own home is while the suite runs in its own


def normalise_environment() -> Path | None:
    """Set os.environ and this process's signal handling to the suite's environment; return the home made for the
    suite, or None where this process inherited one (a pytest-xdist worker keeps its controller's)."""
    made = None
    if REAL_HOME not in os.environ:
        real = Path.home()
        # Caches change how fast, not what: keep the user's (pip's wheels, matplotlib's font list, the scorer's venv)
        os.environ.setdefault("XDG_CACHE_HOME", str(real / ".cache"))
        os.environ[REAL_HOME] = str(real)
        # A home with no ~/.kaggle, ~/.config/kaggle, ~/.keras or ~/.config/matplotlib of the user's in it
        made = Path(tempfile.mkdtemp(prefix="kit-test-home-"))
        os.environ["HOME"] = str(made)
    for name in list(os.environ):
        if name not in KEPT and (name in DROPPED or name.startswith(DROPPED_PREFIXES)):
            del os.environ[name]
    os.environ.update(SET)
    # A process started with SIGCHLD ignored has its children reaped by the kernel: every exit code read back is 0
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    return made


def user_home() -> Path:
    """The home of whoever runs the suite: for what needs their own settings (pip's index, to build a venv)."""
    return Path(os.environ.get(REAL_HOME, Path.home()))


# Sets SIGINT and SIGTERM as asked, then execs the command: dispositions set before exec are what the command starts
# with (default stays default, ignored stays ignored), so the command starts exactly as a shell would start it.
_EXEC = """import os, signal, sys
sigint = signal.SIG_IGN if sys.argv[1] == "ignored" else signal.SIG_DFL
signal.signal(signal.SIGINT, sigint)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
os.execv(sys.argv[2], sys.argv[2:])
"""


def command(*args: str, sigint: str = "default") -> list[str]:
    """`python ARGS` started as an interactive shell starts a command (`sigint="default"`: Ctrl-C raises
    KeyboardInterrupt in it), or as nohup or a script's background job does (`"ignored"`), whatever the signal
    handling of this test process; SIGTERM at its default either way."""
    assert sigint in ("default", "ignored"), sigint
    return [sys.executable, "-c", _EXEC, sigint, sys.executable, *args]


def wait_for(condition: Callable[[], object], what: str, timeout: float = 300.0,
             proc: subprocess.Popen | None = None, poll: float = 0.05) -> None:
    """Return once `condition()` is true. Fail saying what was awaited when `timeout` seconds pass first (generous:
    a busy 2-core machine is slow, not stuck), or when `proc` ends first; `proc` is then stopped and its output
    shown."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process ended first (exit {proc.returncode}){_stopped(proc)}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}{_stopped(proc)}")
        time.sleep(poll)


def finished(proc: subprocess.Popen, what: str, timeout: float = 300.0) -> tuple[str, str]:
    """`proc`'s (stdout, stderr) once it ends; when it runs past `timeout`, it is stopped and the test fails saying
    what it waited for, with the output so far."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"waited {timeout:.0f} s for {what}{_stopped(proc)}")


def _stopped(proc: subprocess.Popen | None) -> str:
    """Kill `proc` (if still running) and return its output, for a failure message."""
    if proc is None:
        return ""
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    text = "".join(part.decode(errors="replace") if isinstance(part, bytes) else part for part in (out, err) if part)
    return f"; its output:\n{text[-3000:]}" if text else ""
