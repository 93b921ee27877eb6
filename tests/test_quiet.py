"""TensorFlow's start-up chatter never reaches the user's terminal; real errors and Python warnings always do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kit.quiet import filter_startup

ROOT = Path(__file__).resolve().parents[1]
# What tensorflow-cpu 2.21 wrote to fd 2 on `import tensorflow` (TF_CPP_MIN_LOG_LEVEL unset), and what GPU
# wheels and JAX add: every line is chatter.
CHATTER = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795916624.181085    4658 port.cc:153] oneDNN custom operations are on. You may see slightly \
different numerical results due to floating-point round-off errors from different computation orders. To turn \
them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1795916624.230078    4658 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use \
available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, \
rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1731000000.000000    4658 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register \
factory for plugin cuDNN when one has already been registered
E0000 00:00:1731000000.000001    4658 cuda_blas.cc:1418] Unable to register cuBLAS factory: Attempting to register \
factory for plugin cuBLAS when one has already been registered
W0000 00:00:1731000000.000002    4658 computation_placer.cc:177] computation placer already registered. Please \
check linkage and avoid linking the same target more than once.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
"""
MARKERS = ("absl::InitializeLog", "oneDNN custom operations", "This TensorFlow binary is optimized",
           "To enable the following instructions", "Unable to register", "computation placer", "I0000", "W0000",
           "XNNPACK delegate")
REAL_ERROR = "E0000 00:00:1731000000.5    4658 some_kernel.cc:12] Out of memory while allocating 9 GB\n"
WARNING_LINE = "/x/kit/y.py:3: UserWarning: a real warning\n  warnings.warn('a real warning')\n"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, **extra}


def test_kit_default_drops_all_chatter_and_keeps_real_errors_and_warnings():
    """With no TF_CPP_MIN_LOG_LEVEL of the user's, every chatter line goes; a real E line and a warning stay."""
    assert filter_startup(CHATTER, None) == ""
    assert filter_startup(CHATTER + REAL_ERROR + WARNING_LINE, None) == REAL_ERROR + WARNING_LINE
    assert filter_startup(WARNING_LINE + CHATTER + REAL_ERROR, None) == WARNING_LINE + REAL_ERROR


@pytest.mark.parametrize("level, kept", [
    (0, "all"), (1, ("E0000", "W0000")), (2, ("E0000",)), (3, ()),
])
def test_a_users_level_means_what_tensorflow_says(level, kept):
    """TF_CPP_MIN_LOG_LEVEL=N of the user's: severities below N go (0 keeps everything); FATAL always stays."""
    out = filter_startup(CHATTER + "F0000 00:00:1.0  1 x.cc:1] fatal\n", level)
    if kept == "all":
        assert out == CHATTER + "F0000 00:00:1.0  1 x.cc:1] fatal\n"
        return
    prefixes = [line[:5] for line in out.splitlines()]
    assert prefixes == [p for p in ("E0000", "E0000", "W0000") if p in kept] + ["F0000"]


def test_a_kit_command_importing_tensorflow_shows_only_its_own_error(tmp_path):
    """`kit train` on a missing cache imports TensorFlow (Keras) and fails: stderr is its one `Error:` line and
    nothing of TensorFlow's start-up (-X importtime proves TF was imported; its lines are left out)."""
    missing = tmp_path / "no-cache"
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kit.cli", "train", "--cache", str(missing),
                             "--out", str(tmp_path / "run")], cwd=ROOT, env=clean_env(), capture_output=True,
                            text=True, timeout=300)
    lines = result.stderr.splitlines()
    assert any(line.split("|")[-1].strip() == "tensorflow" for line in lines), "TensorFlow was not imported"
    own = [line for line in lines if not line.startswith("import time:")]
    assert result.returncode == 1
    assert len(own) == 1 and own[0].startswith(f"Error: {missing}: "), own  # "no training cache here: ..."
    assert not any(marker in result.stderr for marker in MARKERS)


NOISY_PACKAGE = '''
import os, sys, warnings
os.write(2, CHATTER.encode())
sys.stderr.write("a line of the user's own\\n")
warnings.warn("a real warning raised while the library loads", UserWarning)
os.write(2, REAL_ERROR.encode())
'''


@pytest.fixture()
def fake_jax(tmp_path) -> Path:
    """A package named jax (one of the quieted imports) that writes chatter, a warning and an error as it loads."""
    package = tmp_path / "jax"
    package.mkdir()
    (package / "__init__.py").write_text(f"CHATTER = {CHATTER!r}\nREAL_ERROR = {REAL_ERROR!r}\n" + NOISY_PACKAGE)
    return tmp_path


PROGRAM = textwrap.dedent('''
    import warnings
    from kit.data import rehearsal  # kit code, then the CLI module that quiets the imports after it
    import kit.cli
    import jax
    warnings.warn("a real warning raised by kit code after start-up", UserWarning, stacklevel=1)
''')


def test_python_warnings_and_real_errors_still_reach_stderr(fake_jax):
    """Under the kit CLI module, a quieted import loses only its chatter: the user's own line, a Python warning
    raised while it loads and a real error line come through in order, as does a warning raised afterwards."""
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=clean_env(PYTHONPATH=str(fake_jax)))
    assert result.returncode == 0, result.stderr
    assert not any(marker in result.stderr for marker in MARKERS), result.stderr
    order = ["a line of the user's own", "UserWarning: a real warning raised while the library loads",
             "Out of memory while allocating 9 GB", "UserWarning: a real warning raised by kit code after start-up"]
    positions = [result.stderr.find(text) for text in order]
    assert -1 not in positions and positions == sorted(positions), result.stderr


def test_tf_cpp_min_log_level_0_shows_everything(fake_jax):
    """A user who sets TF_CPP_MIN_LOG_LEVEL=0 sees every start-up line, unfiltered."""
    result = subprocess.run([sys.executable, "-c", "import kit.cli, jax"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=clean_env(PYTHONPATH=str(fake_jax), TF_CPP_MIN_LOG_LEVEL="0"))
    assert result.returncode == 0, result.stderr
    assert CHATTER in result.stderr and "Out of memory" in result.stderr


# Importing any of these loads TensorFlow (or JAX) and with it the chatter.
LOADS_TF = ("tensorflow", "keras", "jax", "kit.contract", "kit.training", "kit.preprocessing", "kit.models")


def test_every_bench_quiets_tensorflow_before_it_loads():
    """The benches are as quiet as the kit's commands (issue 27: bench/contract/latency.py printed pages of TF's
    C++ log lines): a bench that loads TensorFlow in its own process calls kit.quiet.install() in main() before
    anything else runs (its helpers load TensorFlow only once main calls them)."""
    import ast

    def loads_tf(node) -> bool:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        return any(name.startswith(LOADS_TF) for name in names)

    for path in sorted((ROOT / "bench").rglob("*.py")):
        tree = ast.parse(path.read_text())
        if not any(loads_tf(node) for node in ast.walk(tree)):
            continue
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        first = next((k for k, s in enumerate(main.body) if "quiet.install()" in ast.unparse(s)), None)
        before = main.body[:first] if first is not None else main.body
        assert first is not None and not any(loads_tf(n) for s in before for n in ast.walk(s)), \
            f"{path.relative_to(ROOT)}: main() does not call kit.quiet.install() before TensorFlow loads"
