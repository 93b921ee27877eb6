"""`kit runs`: every run in one table, best first, with what it changed; the same as JSON and as one HTML page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.config import Config, apply_overrides, recipe
from kit.seeing.runs import collect, flatten, nearest_recipe
from tests.seeing.test_report import Page, decoded_images

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 4


def fake_trained(run_dir: Path, accuracies=(0.5, 0.6), overrides=(), base: Config | None = None,
                 exported: bool = False, cv: bool = True, n_folds: int | None = None,
                 devices: str | None = None) -> Path:
    """What kit train leaves in a run, without training: config.json, run.json, and per fold config.json,
    history.csv (validation accuracy rising to the fold's accuracy) and metrics.json; cv.json; export.json."""
    cfg = apply_overrides(base or Config(), list(overrides))
    run_dir.mkdir(parents=True)
    cfg.save(run_dir / "config.json")
    n_folds = n_folds or len(accuracies)
    (run_dir / "run.json").write_text(json.dumps({"cache": "/data/cache", "n_folds": n_folds,
                                                  "folds": list(range(len(accuracies))), "strategy": "auto"}))
    for k, acc in enumerate(accuracies):
        fold = run_dir / f"fold{k}"
        fold.mkdir()
        cfg.save(fold / "config.json")
        rows = ["epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"]
        rows += [f"{e},0.5,0.001,2.0,{acc * (e + 1) / EPOCHS},{3 - e * 0.5}" for e in range(EPOCHS)]
        (fold / "history.csv").write_text("\n".join(rows) + "\n")
        (fold / "metrics.json").write_text(json.dumps({
            "fold": k, "validated": True, "val_accuracy": acc, "best_epoch": EPOCHS - k, "epochs": EPOCHS,
            "train_sequences": 30, "val_sequences": 10 * (k + 1), "seconds": 60.0, "resumed_after_epoch": 0,
            **({"devices": devices} if devices else {})}))
    if cv:
        weighted = sum(acc * 10 * (k + 1) for k, acc in enumerate(accuracies)) / sum(10 * (k + 1) for k in
                                                                                  range(len(accuracies)))
        (run_dir / "cv.json").write_text(json.dumps({"oof_accuracy": weighted, "n_sequences": 30, "chance": 0.25,
                                                     "fold_accuracy": {str(k): a for k, a in enumerate(accuracies)}}))
    if exported:
        (run_dir / "export").mkdir()
        (run_dir / "export" / "export.json").write_text(json.dumps({
            "models": ["fold0"], "fp16": True, "size_bytes": 2_500_000, "passed": True, "gates": [
                {"name": "size", "ok": True, "detail": "", "data": {"size_mb": 2.5}},
                {"name": "latency", "ok": True, "detail": "", "data": {"builtin": {"mean_ms": 7.25, "p95_ms": 9.0},
                                                                        "xnnpack": {"mean_ms": 2.5, "p95_ms": 3.0},
                                                                        "judged": "builtin"}}]}))
    return run_dir


def table_lines(output: str) -> dict[str, str]:
    """The table's rows by run name (the second column)."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) > 2 and cells[0].isdigit():
            rows[cells[1]] = line
    return rows


@pytest.fixture(autouse=True)
def piped(monkeypatch):
    """These tests read the full one-line-per-run table, which kit runs prints when its output is not a terminal:
    a COLUMNS inherited from the shell (or a test runner's worker) would make it fit that width instead."""
    monkeypatch.delenv("COLUMNS", raising=False)


def test_table_is_best_first_and_shows_only_the_keys_that_differ(tmp_path):
    """One row per run, best CV first; changes name only the keys not equal in every run; CV has its fold spread;
    best epochs, train time with the machine it trained on, and size and latency for the exported run."""
    root = tmp_path / "runs"
    fake_trained(root / "base", (0.5, 0.6))
    fake_trained(root / "mixup", (0.7, 0.8), ["train.mixup_alpha=0.5"], exported=True, devices="8 x tpu")
    fake_trained(root / "mlp", (0.2, 0.4), ["train.epochs=60"], base=recipe("mlp80"))
    result = runner.invoke(app, ["runs", str(root)])
    assert result.exit_code == 0, result.output
    rows = table_lines(result.output)
    assert list(rows) == ["mixup", "base", "mlp"]
    mixup, base, mlp = rows["mixup"], rows["base"], rows["mlp"]
    assert "0.7667 ± 0.0707" in mixup and "2/2" in mixup and " 4 3 " in mixup and "2m00s on 8 x tpu" in mixup
    assert "2.50 MB fp16" in mixup and "7.25 ms" in mixup and mixup.rstrip().endswith("done")
    assert "train.mixup_alpha=0.5" in mixup and "train.mixup_alpha=0.0" in base
    assert "mlp80" in mlp and "train.epochs=60" in mlp and "train.epochs=40" in base
    assert "train.seed" not in result.output and "preprocess.use_z" not in result.output  # the same everywhere
    assert " - " in base  # not exported: no size, no latency


def test_json_is_for_scripts(tmp_path):
    """--json prints a list, best first, with raw numbers, the changed keys as a dict and the whole config."""
    fake_trained(tmp_path / "a", (0.5, 0.6))
    fake_trained(tmp_path / "b", (0.9, 0.7), ["train.mixup_alpha=0.5"])
    result = runner.invoke(app, ["runs", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert [r["name"] for r in runs] == ["b", "a"]
    assert runs[0]["changes"] == {"train.mixup_alpha": 0.5} and runs[1]["changes"] == {"train.mixup_alpha": 0.0}
    assert runs[0]["fold_accuracy"] == {"0": 0.9, "1": 0.7} and runs[0]["best_epochs"] == {"0": 4, "1": 3}
    assert abs(runs[0]["cv_accuracy"] - (0.9 * 10 + 0.7 * 20) / 30) < 1e-9
    assert runs[0]["state"] == "done" and runs[0]["train_seconds"] == 120.0 and runs[0]["export"] is None
    assert runs[0]["config"]["train.mixup_alpha"] == 0.5


def test_half_finished_run_is_shown_as_such_and_never_crashes(tmp_path):
    """A killed fold (backup, no metrics.json) says how far it got; a full fit not yet started says so; a
    metrics.json cut short is a note naming the fix, not a crash; the run's CV comes from its finished fold."""
    run = fake_trained(tmp_path / "killed", (0.5,), n_folds=3, cv=False)
    fold1 = run / "fold1"
    (fold1 / "backup").mkdir(parents=True)
    Config().save(fold1 / "config.json")
    (fold1 / "backup" / "state.json").write_text(json.dumps({"epoch": 7, "weights": "epoch7.weights.h5"}))
    (run / "fold2").mkdir()
    (run / "fold2" / "metrics.json").write_text('{"fold": 2, "val_acc')  # killed while writing
    fake_trained(tmp_path / "fine", (0.4, 0.4))
    result = runner.invoke(app, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    row = table_lines(result.output)["killed"]
    assert "unfinished: fold1 at epoch 7 of 40, fold2 at its end (metrics.json damaged)" in row and "1/3" in row
    assert "0.5000" in row
    assert (f"fold2/metrics.json: damaged (cut short or not JSON: Unterminated string starting at, line 1): delete "
            f"{run / 'fold2'}, then kit train --resume {run} trains fold2 again") in result.output
    assert f"kit train --resume {run}" in result.output
    assert list(table_lines(result.output)) == ["killed", "fine"]


def test_merged_folds_and_kaggle_runs_appear_like_any_other(tmp_path):
    """Folds trained on two machines and copied into one run count as one finished run, even before kit cv
    refreshed cv.json (then the CV comes from the folds' metrics, with a note); a run pulled back from Kaggle
    lists like a local one (its kaggle/ folder is not a run; only its fold count is read from there, so folds
    still on Kaggle show the run as partial); MLflow's store beside the runs is not a run."""
    merged = fake_trained(tmp_path / "merged", (0.3, 0.9))
    (merged / "run.json").write_text(json.dumps({"cache": "/a", "n_folds": 2, "folds": [0], "strategy": "auto"}))
    (merged / "cv.json").write_text(json.dumps({"oof_accuracy": 0.3, "fold_accuracy": {"0": 0.3}}))
    kaggle = fake_trained(tmp_path / "from-kaggle", (0.6, 0.6))
    (kaggle / "run.json").unlink()  # kit kaggle train keeps its state in RUN/kaggle/ instead
    (kaggle / "kaggle" / "fold0").mkdir(parents=True)
    (kaggle / "kaggle" / "state.json").write_text(json.dumps({"n_folds": 3, "groups": {}}))
    (tmp_path / "mlruns" / "artifacts" / "fold0").mkdir(parents=True)
    runs = {r.name: r for r in collect([tmp_path])}
    assert set(runs) == {"merged", "from-kaggle"}
    assert runs["merged"].state == "done" and runs["from-kaggle"].state == "partial: 2 of 3 folds"
    assert abs(runs["merged"].cv_accuracy - (0.3 * 10 + 0.9 * 20) / 30) < 1e-9
    notes = runs["merged"].notes
    assert any("cv.json covers folds 0, not 0,1" in note and f"kit cv {merged}" in note for note in notes)
    assert not runs["from-kaggle"].notes


def test_a_run_still_training_on_kaggle_says_so(tmp_path):
    """A run whose kernels are still out (kit kaggle train --no-wait) lists before any fold came back, with the
    folds still on Kaggle and how to follow them; folds back already count as usual."""
    run = tmp_path / "k"
    (run / "kaggle").mkdir(parents=True)
    Config().save(run / "config.json")
    groups = {"kit-k-abc123-f012": {"folds": [0, 1, 2], "status": "running"},
              "kit-k-abc123-f34": {"folds": [3, 4], "status": "waiting"}}
    (run / "kaggle" / "state.json").write_text(json.dumps({"n_folds": 5, "groups": groups}))
    [listed] = collect([tmp_path])
    assert listed.state == "on Kaggle: folds 0,1,2 running, folds 3,4 waiting" and listed.cv_accuracy is None
    assert any(f"kit kaggle status {run}" in note for note in listed.notes)
    groups["kit-k-abc123-f34"]["status"] = "done"
    (run / "kaggle" / "state.json").write_text(json.dumps({"n_folds": 5, "groups": groups}))
    assert collect([tmp_path])[0].state == "on Kaggle: folds 0,1,2 running"
    (run / "kaggle" / "full").mkdir()
    full = {"kit-k-def456-s01": {"folds": [0, 1], "status": "queued"}}
    (run / "kaggle" / "full" / "state.json").write_text(json.dumps({"kind": "full", "n_folds": 2, "groups": full}))
    assert collect([tmp_path])[0].state == "on Kaggle: folds 0,1,2 running, full fits 0,1 queued"


def test_html_page_is_self_contained_with_every_runs_curves(tmp_path):
    """--html writes one page: the same table, one PNG (validation curves of every run overlaid) as a data URI,
    no script, stylesheet or file from elsewhere."""
    fake_trained(tmp_path / "runs" / "a", (0.5, 0.6))
    fake_trained(tmp_path / "runs" / "sweep" / "train.mixup_alpha=0.5", (0.7, 0.8), ["train.mixup_alpha=0.5"])
    out = tmp_path / "page" / "runs.html"
    result = runner.invoke(app, ["runs", str(tmp_path / "runs"), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"wrote {out}")
    page = Page(out.read_text())
    images = decoded_images(page)
    assert len(images) == 1 and images[0].format == "PNG" and images[0].size[0] > 500
    assert not [t for t, a in page.tags if t in ("script", "link", "iframe")]
    text = " ".join(page.text)
    assert "sweep/train.mixup_alpha=0.5" in text and "0.7667 ± 0.0707" in text and "CV accuracy" in text


def test_missing_or_empty_folder_is_one_line_error(tmp_path):
    """No such folder, or a folder without a run: exit 1 with one `Error:` line that says what a run is."""
    result = runner.invoke(app, ["runs", str(tmp_path / "nope")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "no such folder" in result.output
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    result = runner.invoke(app, ["runs", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "no run directory here" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_recipe_is_the_nearest_named_starting_point():
    """A config is named after the defaults or recipe it differs from least: a recipe with one key changed is
    still that recipe."""
    assert nearest_recipe(flatten(Config().to_dict())) == "defaults"
    assert nearest_recipe(flatten(apply_overrides(recipe("conv1st"), ["train.epochs=5"]).to_dict())) == "conv1st"
    assert nearest_recipe(flatten(apply_overrides(Config(), ["model.name=mlp"]).to_dict())) == "defaults"


def test_kit_runs_never_imports_tensorflow(tmp_path):
    """Comparing runs reads files only: the command, HTML page included, runs without TensorFlow or Keras."""
    for i in range(3):
        fake_trained(tmp_path / "runs" / f"r{i}", (0.1 * i, 0.2))
    code = ("import sys; from kit.cli import app; sys.argv = ['kit', 'runs', sys.argv[1], '--html', sys.argv[2]]\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\nassert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs"), str(tmp_path / "p.html")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "r2" in proc.stdout
