"""`kit train --full`: final fits on every signer, their epoch count from a CV run, export and report marking
them as not validated, and kit cv leaving them out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.config import Config, ModelConfig, PreprocessConfig, TrainConfig
from kit.training.cv import summarize
from kit.errors import KitError
from kit.contract.export import pick_models
from kit.training.full import epochs_from_cv, plan_full
from tests.runs import fake_run

runner = CliRunner()


@pytest.fixture(scope="module")
def cache(tiny_cache) -> Path:
    return tiny_cache


def fake_cv(run_dir: Path, cache: Path | None, best_epochs=(1, 2), oof: bool = True) -> Path:
    """A finished CV run without training: config.json, run.json, and per fold a metrics.json with its best
    epoch (and random out-of-fold predictions, merged into cv.json)."""
    run_dir.mkdir(parents=True)
    Config(preprocess=PreprocessConfig(max_len=16), model=ModelConfig(name="llama_tiny"),
           train=TrainConfig(epochs=6, batch_size=16)).save(run_dir / "config.json")
    (run_dir / "run.json").write_text(json.dumps({"cache": str(Path(cache or run_dir).resolve()),
                                                  "n_folds": len(best_epochs), "folds": list(range(len(best_epochs))),
                                                  "strategy": "auto"}))
    rng = np.random.default_rng(0)
    for k, best in enumerate(best_epochs):
        fold = run_dir / f"fold{k}"
        fold.mkdir()
        (fold / "metrics.json").write_text(json.dumps({"fold": k, "validated": True, "val_accuracy": 0.25,
                                                       "best_epoch": best}))
        if oof:
            np.savez(fold / "oof.npz", sequence_ids=np.arange(8) + 10 * k, participant_ids=np.full(8, k),
                     labels=rng.integers(0, 4, 8), probs=rng.dirichlet(np.ones(250), 8).astype(np.float32))
    if oof:
        summarize(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def full_run(cache, tmp_path_factory):
    """`kit train --full --from-cv RUN --seeds 2` beside the folds of a CV run whose best epochs were 1 and 2."""
    run = fake_cv(tmp_path_factory.mktemp("cv") / "run", cache)
    cv_before = (run / "cv.json").read_text()
    result = runner.invoke(app, ["train", "--full", "--from-cv", str(run), "--seeds", "2"])
    assert result.exit_code == 0, result.output
    return run, result.output, cv_before


def test_full_fits_train_on_every_signer_with_their_own_seed(full_run, cache):
    """Each member holds its config (seed train.seed + k), the last epoch's weights, a history row per epoch and
    metrics marking it finished and unvalidated; the CV run's own config is left as it was."""
    from kit.data.cache import open_cache

    run, output, _ = full_run
    for k in (0, 1):
        member = run / f"full{k}"
        cfg = json.loads((member / "config.json").read_text())
        assert cfg["train"]["seed"] == k and cfg["train"]["epochs"] == 2
        assert (member / "model.weights.h5").stat().st_size > 0
        assert len((member / "history.csv").read_text().strip().splitlines()) == 1 + 2
        metrics = json.loads((member / "metrics.json").read_text())
        assert metrics["validated"] is False and metrics["epochs"] == 2 and metrics["seed"] == k
        assert metrics["signers"] == 4 and metrics["train_sequences"] == len(open_cache(cache))
        assert not (member / "oof.npz").exists() and not (member / "backup").exists()
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 6
    assert json.loads((run / "run.json").read_text())["full"] == [0, 1]
    assert "2 epochs: the rounded mean of the best epochs of the folds of" in output and "(fold0 1, fold1 2)" in output


def test_kit_cv_ignores_full_fits(full_run):
    """Full fits have no held-out signers: kit cv merges only the folds, and cv.json is what it was."""
    run, _, cv_before = full_run
    result = runner.invoke(app, ["cv", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "cv.json").read_text()) == json.loads(cv_before)


def test_export_prefers_full_fits_and_marks_each_model_validated_or_not(full_run, tmp_path):
    """A run with full fits exports them (--top still limits); --models takes a full fit like a fold, and
    export.json and report.html say which model was validated on unseen signers and which was not."""
    run, _, _ = full_run
    assert pick_models(run, 3) == [run / "full0", run / "full1"] and pick_models(run, 1) == [run / "full0"]
    fold = fake_run(tmp_path / "other", model_names=("llama_tiny",), max_len=16) / "fold0"
    result = runner.invoke(app, ["export", "--models", str(run / "full1"), "--models", str(fold),
                                 "--out", str(run / "export")])
    assert result.exit_code == 0, result.output
    info = json.loads((run / "export" / "export.json").read_text())
    assert info["passed"]
    full, validated = info["members"]
    assert full["validated"] is False and full["trained_on"] == "every signer" and full["seed"] == 1
    assert validated["validated"] is True and validated["val_accuracy"] == 0.5
    assert "full fit on every signer (seed 1, 2 epochs), not validated" in result.output
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    html = (run / "report.html").read_text()
    assert "no: full fit" in html and "yes: fold accuracy 0.5000" in html and "Full fits on every signer" in html


@pytest.mark.parametrize("best,expected", [((3, 4), 4), ((2, 2, 5), 3), ((7,), 7)])
def test_from_cv_takes_the_rounded_mean_of_the_best_epochs(tmp_path, best, expected):
    """The epoch count of a full fit is the folds' mean best epoch, halves rounded up; --epochs overrides it."""
    run = fake_cv(tmp_path / "cv", None, best, oof=False)
    assert epochs_from_cv(run)[0] == expected
    plan = plan_full(None, [], from_cv=run)
    assert plan.cfg.train.epochs == expected and plan.run_dir == run and plan.cfg.model.name == "llama_tiny"
    given = plan_full(None, ["train.epochs=9"], from_cv=run)
    assert given.cfg.train.epochs == 9 and f"folds suggest {expected}" in given.epochs_note


def test_a_run_without_finished_folds_gives_no_epoch_count(tmp_path):
    """--from-cv on a run whose folds never finished names the fix."""
    run = fake_cv(tmp_path / "cv", None, (), oof=False)
    with pytest.raises(KitError, match="no finished fold .* to take the epoch count from"):
        plan_full(None, [], from_cv=run)


@pytest.mark.parametrize("args,message", [
    (["--full", "--from-cv", "{empty}"], "Error: {empty}: no finished fold (fold*/metrics.json) to take the epoch "
                                         "count from; train folds there first"),
    (["--full", "--from-cv", "{nowhere}"], "Error: {nowhere}/config.json: missing; --from-cv needs a run directory"),
    (["--full", "--from-cv", "{pulled}"], "Error: {pulled} has no run.json naming its cache (its folds trained "
                                          "elsewhere): give --cache"),
    (["--full", "--cache", "{cache}"], "Error: --full needs an epoch count, since no held-out signer can pick one"),
    (["--full", "--folds", "3", "--epochs", "1"], "Error: --full trains on every signer: drop --folds/--fold"),
    (["--seeds", "2", "--epochs", "1"], "Error: --from-cv, --seeds and --member go with --full"),
    (["--full", "--from-cv", "{cv}", "--seeds", "2", "--member", "2"], "Error: --member 2 is out of range: with "
                                                                       "--seeds 2 use 0..1"),
    (["--full", "--from-cv", "{cv}", "--set", "model.dim=32"], "Error: {cv}: its folds were trained with another "
                                                                "config (beyond epochs and seed): give a new --out"),
    (["--cache", "{cache}", "--out", "{full_only}", "--folds", "2", "--epochs", "1"],
     "Error: {full_only} holds full fits with another config: give a new --out"),
], ids=["from-cv-without-folds", "from-cv-not-a-run", "from-cv-pulled-from-kaggle-without-cache", "no-epoch-count",
        "full-with-folds", "seeds-without-full", "member-out-of-range", "other-config-beside-folds",
        "folds-of-another-config-beside-full-fits"])
def test_bad_full_options_fail_with_one_line(cache, tmp_path, args, message):
    """Each misuse of --full, --from-cv and --seeds, and folds of another recipe beside full fits, exits 1 with one
    `Error:` line naming the fix."""
    paths = {"empty": str(fake_cv(tmp_path / "empty", cache, (), oof=False)), "nowhere": str(tmp_path / "nowhere"),
             "cache": str(cache), "cv": str(fake_cv(tmp_path / "cv", cache, (2, 2), oof=False)),
             "full_only": str(tmp_path / "full_only"), "pulled": str(tmp_path / "pulled")}
    Config(model=ModelConfig(name="llama_tiny")).save(_mkdir(tmp_path / "full_only") / "config.json")
    (tmp_path / "full_only" / "run.json").write_text(json.dumps({"cache": str(cache.resolve()), "full": [0]}))
    Config().save(_mkdir(tmp_path / "pulled") / "config.json")  # folds that came back from kit kaggle train
    result = runner.invoke(app, ["train", *[a.format(**paths) for a in args]])
    assert result.exit_code == 1
    assert result.output.strip().startswith(message.format(**paths)) and len(result.output.strip().splitlines()) == 1


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_kit_cv_on_full_fits_only_says_there_is_nothing_held_out(tmp_path):
    """A run of full fits alone has no out-of-fold predictions: kit cv says so in one line."""
    (tmp_path / "run" / "full0").mkdir(parents=True)
    (tmp_path / "run" / "full0" / "metrics.json").write_text(json.dumps({"validated": False}))
    result = runner.invoke(app, ["cv", str(tmp_path / "run")])
    assert result.exit_code == 1 and "only full fits on every signer" in result.output
