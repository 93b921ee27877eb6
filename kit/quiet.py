"""Keep TensorFlow's start-up chatter off the terminal, while real warnings and errors still reach it.

Where the chatter comes from (tensorflow-cpu 2.21; GPU wheels and JAX add more of the same kinds):
- C++ lines that TF's shared libraries write straight to file descriptor 2 while they load, through absl
  logging before anything initialised it: "WARNING: All log messages before absl::InitializeLog() is called
  are written to STDERR", then "I0000 ... port.cc:153] oneDNN custom operations are on ..." (twice: two
  libraries), "cpu_feature_guard.cc] This TensorFlow binary is optimized ...", and on GPU machines "E0000 ...
  Unable to register cuDNN/cuFFT/cuBLAS factory", "computation placer already registered" (TF and JAX).
  TF_CPP_MIN_LOG_LEVEL must be set before TF loads, and even then it does not reach oneDNN's line, which is
  logged before TF reads it. TF_ENABLE_ONEDNN_OPTS=0 would silence that line by turning oneDNN off, changing
  speed and numerics: not done here.
- Python loggers "absl" and "tensorflow" ("WARNING:absl:...", deprecation notes).
- The TFLite runtime's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", once, on the first interpreter.

`install()`, called by kit/cli/base.py before anything imports TensorFlow, sets TF_CPP_MIN_LOG_LEVEL=2 (TF's own
runtime logs: errors only) unless the user set it, and makes the first import of tensorflow, jax or jaxlib run
with fd 2 captured; when the import ends, fd 2 is restored and every captured line that is not start-up
chatter is written back. Nothing else is captured: an error or warning after start-up reaches the terminal as
it happens, Python warnings are left alone, and a user who sets TF_CPP_MIN_LOG_LEVEL keeps control of what
shows (0: everything, unfiltered). kit.contract.tflite creates its interpreters inside `startup()`, the same filter, on
only where `install()` ran: a library user's stderr is never touched.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = 2  # TF's meaning: 0 all, 1 no INFO, 2 no INFO or WARNING, 3 no ERROR either
# importing these loads the chatty C++ libraries (mediapipe: TensorFlow, its graph, a line of its own)
NOISY_MODULES = frozenset({"tensorflow", "jax", "jaxlib", "mediapipe"})
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
LOG_LINE = re.compile(r"^([IWEF])\d{4} ")  # absl's prefix: severity, month and day ("I0000" before init)
TFLITE_LINE = re.compile(r"^(INFO|WARNING|ERROR|FATAL): ")  # TFLite's minimal logging
PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# Start-up lines that are chatter at any severity (E0000 "Unable to register..." is no error of the user's).
CHATTER = re.compile(
    r"oneDNN custom operations are on|This TensorFlow binary is optimized|Unable to register cu(DNN|FFT|BLAS) "
    r"factory|computation placer already registered|cuda_(dnn|fft|blas)\.cc|TF-TRT Warning|Could not find TensorRT|"
    r"Could not find cuda drivers|Unable to initialize backend|An NVIDIA GPU may be present")
CONTINUATION = re.compile(r"^To enable the following instructions|^Attempting to register factory")
# Not absl-formatted, yet harmless: mediapipe 0.10.21 under protobuf 6 prints it once on import, from a probe of an
# API that protobuf 5 removed; Holistic works (README, "Your own signing").
FOREIGN_CHATTER = re.compile(r"^AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'\s*$")


def is_chatter(line: str, level: int | None) -> bool | None:
    """Whether one captured start-up line is chatter to drop; None for a line that goes with the one before.

    `level` is the user's TF_CPP_MIN_LOG_LEVEL, or None when they set none: then every INFO and WARNING line,
    and the known chatter at any severity, goes. A user's level drops exactly the severities TF would (FATAL
    never). Lines not in absl's format (a Python warning, a message of the user's) are never chatter.
    """
    if CONTINUATION.match(line):
        return None
    if line.strip() == PREAMBLE or FOREIGN_CHATTER.match(line):
        return level != 0
    header = LOG_LINE.match(line) or TFLITE_LINE.match(line)
    if not header:
        return False
    severity = SEVERITY[header[1][0]]
    if level is None:
        return severity < DEFAULT_LEVEL or bool(CHATTER.search(line)) and severity < SEVERITY["F"]
    return severity < min(level, SEVERITY["F"])


def filter_startup(text: str, level: int | None) -> str:
    """`text` without its start-up chatter (see `is_chatter`); every other line kept, in order."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        verdict = is_chatter(line, level)
        dropping = dropping if verdict is None else verdict
        if not dropping:
            kept.append(line)
    return "".join(kept)


def user_level() -> int | None:
    """The TF_CPP_MIN_LOG_LEVEL the user set (0..3), or None when unset or not a number."""
    value = os.environ.get(LEVEL_VAR, "").strip()
    return int(value) if value.isdigit() else None


_OFF = object()
_installed: object = _OFF  # the level install() chose (None: kit's default), or _OFF


def install() -> None:
    """Quiet TF's start-up from here on (see the module docstring); call before anything imports TensorFlow."""
    global _installed
    level = user_level()
    if level is None:
        os.environ[LEVEL_VAR] = str(DEFAULT_LEVEL)
    elif level == 0:
        return  # the user asked for everything
    _installed = level
    if not any(isinstance(finder, _QuietImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImports(level))


def startup() -> contextlib.AbstractContextManager:
    """`filtered_fd2` where `install()` ran (the kit command), else nothing: for a runtime's first start."""
    return contextlib.nullcontext() if _installed is _OFF else filtered_fd2(_installed)  # type: ignore[arg-type]


@contextlib.contextmanager
def native_logs() -> Iterator[None]:
    """Like `startup()`, for a long native computation (MediaPipe's graph, which logs warnings as it meets new input):
    its lines on fd 2 pass the same filter when the block ends, while Python's own stderr (a progress bar) still
    reaches the terminal as it happens. Nothing is changed where `install()` did not run."""
    if _installed is _OFF:
        yield
        return
    try:
        python_on_fd2 = sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test runner's stream: not fd 2, nothing to move
        python_on_fd2 = False
    terminal = None
    if python_on_fd2:
        sys.stderr.flush()
        terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
    saved, sys.stderr = sys.stderr, terminal or sys.stderr
    try:
        with filtered_fd2(_installed):  # type: ignore[arg-type]
            yield
    finally:
        sys.stderr = saved
        if terminal is not None:
            terminal.close()


@contextlib.contextmanager
def filtered_fd2(level: int | None) -> Iterator[None]:
    """Capture file descriptor 2 in a temporary file for the block, then write back all but the chatter."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_startup(capture.read().decode("utf-8", "replace"), level)
            if kept:
                os.write(2, kept.encode())


class _QuietImports(importlib.abc.MetaPathFinder):
    """Finds NOISY_MODULES with the other finders and wraps their loaders in `filtered_fd2`."""

    def __init__(self, level: int | None):
        self.level = level
        self.finding = False

    def find_spec(self, name, path=None, target=None):
        if name not in NOISY_MODULES or self.finding:
            return None
        self.finding = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self.level)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """The real loader, run with fd 2 filtered; after it, the Python loggers of absl and TF quieted too."""

    def __init__(self, loader, level: int | None):
        self.loader, self.level = loader, level

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with filtered_fd2(self.level):
            self.loader.exec_module(module)
        if self.level is None:  # TF and Keras log through these; absl's own handler writes every WARNING
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
            if "absl.logging" in sys.modules:  # never create absl's logger before absl: it must be an ABSLLogger
                logging.getLogger("absl").setLevel(logging.ERROR)

    def __getattr__(self, name):  # get_resource_reader, is_package, get_data...: the real loader's
        return getattr(self.loader, name)
