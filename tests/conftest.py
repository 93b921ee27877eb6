"""Shared fixtures, and the environment every test runs in (tests/environment.py). The real competition samples are
in the repository: samples/asl-signs (LICENSE.md there)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import environment

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "asl-signs"
_OWN_HOME: list[str] = []  # the home this process made for the suite, removed when the session ends


def pytest_configure(config) -> None:
    """The suite's environment, not the caller's: set before any test module imports Keras, TensorFlow or Typer."""
    made = environment.normalise_environment()
    if made is not None:
        _OWN_HOME.append(made)


def pytest_unconfigure(config) -> None:
    for home in _OWN_HOME:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The folder of real competition files (10 landmark files, samples.csv, the sign map, train_ids_folds5.csv),
    in the repository, so every test that reads them runs wherever the suite does."""
    return SAMPLES


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """Synthetic competition folders of any size, each built once per test process and shared by every test file
    that asks for the same one: `synthetic(signs, signers, per_sign, seed=0, cache=False)` returns ROOT, with
    ROOT/data written by `kit synth` and, with cache=True, ROOT/cache by `kit prepare`. Read only: a test that
    changes files works on a copy, and runs go elsewhere."""
    from tests.runs import synth_and_prepare

    built: dict[tuple, Path] = {}

    def build(signs: int, signers: int, per_sign: int, seed: int = 0, cache: bool = False) -> Path:
        key = (signs, signers, per_sign, seed)
        if key not in built:
            root = tmp_path_factory.mktemp(f"synth{signs}x{signers}x{per_sign}-seed{seed}")
            built[key] = synth_and_prepare(root, signs, signers, per_sign, seed=seed, prepare=False)
        root = built[key]
        if cache and not (root / "cache").is_dir():
            from kit.data.prepare import build_cache

            build_cache(root / "data", root / "cache", workers=1)
        return root

    return build


@pytest.fixture(scope="session")
def tiny_cache(synthetic) -> Path:
    """4 signs x 4 synthetic signers x 2, cached: for tests that train (read only; runs go elsewhere)."""
    return synthetic(4, 4, 2, cache=True) / "cache"


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A 3-fold ensemble of untrained llama_tiny models exported as the kit exports (model.tflite, submission.zip):
    built once for every test that needs a real exported model."""
    from kit.contract.export import export
    from tests.runs import fake_run

    return export(fake_run(tmp_path_factory.mktemp("run")), top=3)


@pytest.fixture(scope="session")
def trained_run(tiny_cache, tmp_path_factory):
    """One tiny run trained and exported through the CLI as a user would (llama_tiny, 2 folds of 1 epoch, exported
    with --top 1): for every test that needs a real run folder (folds.csv, cv.json, export/export.json).
    Returns (run directory, the competition folder its cache came from, kit export's output)."""
    from typer.testing import CliRunner

    from kit.cli import app

    run = tmp_path_factory.mktemp("trained") / "run"
    for args in (["train", "--cache", str(tiny_cache), "--out", str(run), "--folds", "2", "--epochs", "1",
                  "--model", "llama_tiny", "--set", "preprocess.max_len=16"],
                 ["export", str(run), "--top", "1"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    return run, tiny_cache.parent / "data", result.output
