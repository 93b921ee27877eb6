"""`--track mlflow`: training and export recorded in MLflow, checked by reading the runs back through MLflow's own
client. MLflow is an optional extra (the test extra brings it): without it these tests skip, except under CI=true,
where they must run."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys

import pytest
from typer.testing import CliRunner

from kit.seeing import track
from kit.cli import app
from kit.errors import KitError
from kit.seeing.runs import flatten
from tests.seeing.test_runs import fake_trained

runner = CliRunner()


@pytest.fixture
def mlflow_client(monkeypatch, tmp_path):
    """MLflow's client class, with MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME unset (the default store), run
    from tmp_path: given a database URI alone, MLflow puts artifacts in ./mlruns of the working directory."""
    if importlib.util.find_spec("mlflow") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("MLflow is missing: CI must run the tracking tests (pip install -e \".[test]\" brings it)")
        pytest.skip("MLflow is not installed (pip install -e \".[mlflow]\")")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    return MlflowClient


def artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.parametrize("command", ["train", "export"])
def test_unknown_tracker_is_one_line_error(command, tmp_path):
    """--track takes the name of a tracker; anything else exits 1 naming the one it knows, before any work."""
    where = [str(tmp_path)] if command == "export" else ["--out", str(tmp_path / "r")]
    result = runner.invoke(app, [command, *where, "--track", "wandb"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --track wandb: not a tracker kit knows; use --track mlflow"


def test_missing_mlflow_names_the_install(tmp_path, monkeypatch):
    """Without MLflow, --track mlflow fails in one line that says how to install it, before training anything."""
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: find_spec answers None
    result = runner.invoke(app, ["train", "--cache", str(tmp_path / "no-cache"), "--out", str(tmp_path / "r"),
                                 "--track", "mlflow"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: --track mlflow needs MLflow, which is not installed here: ")
    assert 'pip install -e ".[mlflow]"' in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_recording_a_trained_run_reads_back_and_reuses_its_run(tmp_path, mlflow_client, monkeypatch):
    """Recording a run logs its config as params, CV and per-fold numbers as metrics, config.json and cv.json as
    artifacts, into MLFLOW_TRACKING_URI when set; recording it again adds to the same MLflow run; a command that
    fails before training leaves no run at all."""
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # removed again after the test
    run = fake_trained(tmp_path / "runs" / "base", (0.5, 0.7), ["train.mixup_alpha=0.5"])
    with pytest.raises(KitError):
        with track.recording("mlflow", tmp_path / "runs" / "typo"):
            raise KitError("unknown key")
    with track.recording("mlflow", run):
        pass
    first = json.loads((run / track.RECORD).read_text())
    with track.recording("mlflow", run):
        pass
    assert json.loads((run / track.RECORD).read_text()) == first and first["tracking_uri"] == uri
    client = mlflow_client(uri)
    found = client.search_runs([first["experiment_id"]])
    assert [r.info.run_name for r in found] == ["base"]  # not "typo"
    logged = client.get_run(first["run_id"])
    assert logged.info.status == "FINISHED"
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in
              flatten(json.loads((run / "config.json").read_text())).items()}
    assert logged.data.params == config and logged.data.params["train.mixup_alpha"] == "0.5"
    assert logged.data.metrics["cv_accuracy"] == pytest.approx((0.5 * 10 + 0.7 * 20) / 30)
    assert logged.data.metrics["fold1/best_val_accuracy"] == 0.7 and logged.data.metrics["fold0/best_epoch"] == 4
    assert {"config.json", "cv.json", "fold0/history.csv"} <= artifacts(client, first["run_id"])
    assert not (tmp_path / "runs" / track.STORE).exists()  # the URI was given: nothing beside the runs


@pytest.mark.slow
def test_train_and_export_are_recorded_in_the_local_store(tiny_cache, tmp_path, mlflow_client):
    """`kit train --track mlflow` then `kit export --track mlflow`, with no tracking URI: one MLflow run in the
    SQLite store beside the runs holds the config, every epoch's metrics (as history.csv has them), the CV, the
    export gates, and report.html, config.json and export.json."""
    run = tmp_path / "runs" / "tracked"
    result = runner.invoke(app, ["train", "--cache", str(tiny_cache), "--out", str(run), "--folds", "2", "--fold",
                                 "0", "--epochs", "2", "--model", "llama_tiny", "--set", "preprocess.max_len=16",
                                 "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run), "--top", "1", "--track", "mlflow"])
    assert result.exit_code == 0, result.output

    record = json.loads((run / track.RECORD).read_text())
    assert record["tracking_uri"] == f"sqlite:///{(tmp_path / 'runs' / 'mlruns' / 'mlflow.db').resolve()}"
    client = mlflow_client(record["tracking_uri"])
    logged = client.get_run(record["run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == "tracked"
    assert client.get_experiment(logged.info.experiment_id).name == "runs"
    assert logged.data.params["model.name"] == "llama_tiny" and logged.data.params["train.epochs"] == "2"
    with open(run / "fold0" / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    epochs = client.get_metric_history(record["run_id"], "fold0/val_accuracy")
    assert [m.step for m in epochs] == [1, 2]
    assert [m.value for m in epochs] == pytest.approx([float(row["val_accuracy"]) for row in history])
    assert len(client.get_metric_history(record["run_id"], "fold0/learning_rate")) == 2
    cv = json.loads((run / "cv.json").read_text())
    metrics = logged.data.metrics
    assert metrics["cv_accuracy"] == pytest.approx(cv["oof_accuracy"]) and metrics["folds_finished"] == 1
    assert metrics["export/passed"] == 1 and metrics["export/gate_latency"] == 1 and metrics["export/size_mb"] > 0
    assert metrics["export/latency_mean_ms"] > 0 and logged.data.tags["kit.export"] == "passed"
    assert {"report.html", "config.json", "cv.json", "export/export.json"} <= artifacts(client, record["run_id"])
    assert logged.info.artifact_uri.startswith((tmp_path / "runs" / "mlruns" / "artifacts").resolve().as_uri())
    listed = json.loads(runner.invoke(app, ["runs", str(tmp_path / "runs"), "--json"]).output)
    assert [r["name"] for r in listed] == ["tracked"] and listed[0]["mlflow"]["run_id"] == record["run_id"]
