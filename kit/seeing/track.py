"""`--track mlflow`: record runs in MLflow, as kit train and kit export go.

One kit run directory is one MLflow run, whose id RUN/mlflow.json keeps, so that `kit train --resume` and
`kit export --track mlflow` add to the same record. What is logged comes from what the run writes:
- params: the resolved config (RUN/config.json) as dotted keys, the ones --set takes (model overrides as model.KEY);
- per epoch (a Keras callback in kit.training.train's fit): the epoch's logs, the same values history.csv gets, under
  the fold's or full fit's name (fold0/val_accuracy, full1/loss ...), step = epoch (1-based), plus its wall time;
- at the end of kit train: the CV accuracy and its fold spread, each fold's best accuracy, best epoch and time
  (the numbers `kit runs` shows, from kit.seeing.runs); artifacts config.json, cv.json, report.md, report.html and each
  fold's metrics.json and history.csv;
- at the end of kit export: the gates (1 ok, 0 failed), size, latency and parity, with export.json and the
  refreshed report.html.

Where: MLFLOW_TRACKING_URI if set (a server, a database, anything MLflow takes); else a local store beside the
runs, RUN/../mlruns/mlflow.db (SQLite) with artifacts in RUN/../mlruns/artifacts: no server needed. SQLite, not
MLflow's folder store: MLflow 3 keeps the folder store in maintenance mode and refuses to open one unless
MLFLOW_ALLOW_FILE_STORE=true. The experiment is MLFLOW_EXPERIMENT_NAME, else the name of the folder holding the
run (runs, or a sweep's parent). Browse it with the full MLflow package: `mlflow ui --backend-store-uri
sqlite:///runs/mlruns/mlflow.db`.

MLflow is an optional extra, imported only when --track asks for it. A tracking failure after training started
(a server gone away) is a warning, never a lost training run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import keras

from kit.errors import KitError
from kit.progress import say

KINDS = ("mlflow",)
INSTALL = 'pip install -e ".[mlflow]" (or pip install "mlflow-skinny>=3.17,<4" sqlalchemy alembic)'
STORE = "mlruns"  # the default local store, beside the runs
RECORD = "mlflow.json"  # in the run directory: which MLflow run holds it
BATCH = 100  # params per log_batch call (MLflow's limit)

_active: Recording | None = None  # the recording kit.training.train's callbacks report to, within `recording`


def open_tracker(kind: str | None) -> str | None:
    """Check a --track value before any training: None (off) or "mlflow", with MLflow importable."""
    if kind is None:
        return None
    if kind not in KINDS:
        raise KitError(f"--track {kind}: not a tracker kit knows; use --track {' or '.join(KINDS)}")
    if importlib.util.find_spec("mlflow") is None:
        raise KitError(f"--track mlflow needs MLflow, which is not installed here: {INSTALL}")
    return kind


@contextlib.contextmanager
def recording(tracker: str | None, run_dir: Path | None, stage: str = "train",
              export_dir: Path | None = None) -> Iterator[Recording | None]:
    """Within the block, training and export of `run_dir` are recorded (nothing happens when `tracker` is None).

    The MLflow run is opened at the first epoch, or at the end when the stage produced something, so a command
    that fails before training (a typo, a config clash) leaves no run behind. At the end the stage's results are
    logged and the run ends FINISHED, FAILED, or KILLED (Ctrl-C); an export leaves the run's status as it was.
    """
    global _active
    if tracker is None:
        yield None
        return
    if run_dir is None:
        raise KitError("--track needs a run directory (or --out) to record")
    rec = Recording(Path(run_dir), stage, export_dir)
    _active, outcome = rec, "FAILED"
    try:
        yield rec
        outcome = "FINISHED"
    except KeyboardInterrupt:
        outcome = "KILLED"
        raise
    finally:
        _active = None
        rec.close(outcome)


def epoch_callbacks(out_dir: Path) -> list[keras.callbacks.Callback]:
    """The callbacks kit.training.train adds to a fold's or full fit's fit: MLflow's per-epoch metrics under --track."""
    return [] if _active is None else [EpochMetrics(_active, Path(out_dir).name)]


class EpochMetrics(keras.callbacks.Callback):
    """Logs each epoch's logs (after LogLearningRate put the learning rate in) as PREFIX/KEY at step epoch + 1."""

    def __init__(self, rec: Recording, prefix: str):
        super().__init__()
        self.rec, self.prefix, self.started = rec, prefix, time.time()

    def on_train_begin(self, logs=None):
        self.rec.start()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        values = {f"{self.prefix}/{key}": value for key, value in (logs or {}).items()}
        values[f"{self.prefix}/epoch_seconds"] = time.time() - self.started
        self.rec.log_metrics(values, step=epoch + 1)


def tracking_uri(run_dir: Path) -> tuple[str, Path | None]:
    """MLFLOW_TRACKING_URI, or the SQLite store beside the runs; with the local store's folder (None otherwise)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], None
    store = Path(run_dir).resolve().parent / STORE
    return f"sqlite:///{store / 'mlflow.db'}", store


class Recording:
    """One kit run directory's MLflow run, for one command (stage "train" or "export")."""

    def __init__(self, run_dir: Path, stage: str, export_dir: Path | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:  # installed, but broken (a dependency missing or at a version it cannot use)
            raise KitError(f"--track mlflow: MLflow is installed but does not import ({err}); reinstall: {INSTALL}")

        for name in ("mlflow", "alembic"):  # their INFO lines (creating tables, migrations) are not kit's news
            logging.getLogger(name).setLevel(logging.WARNING)
        self.run_dir, self.stage, self.began = run_dir, stage, time.time()
        self.export_dir = Path(export_dir) if export_dir else run_dir / "export"
        self.uri, store = tracking_uri(run_dir)
        if store is not None and importlib.util.find_spec("sqlalchemy") is None:
            raise KitError(f"--track mlflow keeps a local SQLite store ({store}), which needs SQLAlchemy: {INSTALL}; "
                           "or set MLFLOW_TRACKING_URI to a server")
        try:  # reach the store now, before any training: a wrong URI is a clear stop, not a lost record later
            self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment(store)
        except KitError:
            raise
        except Exception as err:  # MlflowException, connection errors
            raise KitError(f"MLflow at {self.uri}: {type(err).__name__}: {' '.join(str(err).split())} (check "
                           "MLFLOW_TRACKING_URI, or unset it for the local store beside the runs)")
        self.run_id: str | None = None
        self.previous_status: str | None = None  # the status of a run this command reopened
        self.broken = False

    def _experiment(self, store: Path | None) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or self.run_dir.resolve().parent.name or "kit"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            if store is not None:
                store.mkdir(parents=True, exist_ok=True)
            location = (store / "artifacts").as_uri() if store is not None else None
            return self.client.create_experiment(name, artifact_location=location)
        if experiment.lifecycle_stage != "active":
            raise KitError(f"MLflow experiment {name!r} at {self.uri} is deleted: restore it, or set "
                           "MLFLOW_EXPERIMENT_NAME to another name")
        return experiment.experiment_id

    def start(self) -> None:
        """Open the run directory's MLflow run (the one RUN/mlflow.json names, if this store still has it, else a
        new one) and log the config; once per command."""
        if self.run_id is not None or self.broken:
            return
        self._guard(self._open, "open the run")

    def _open(self) -> None:
        record = self.run_dir / RECORD
        known = json.loads(record.read_text()) if record.is_file() else {}
        if known.get("tracking_uri") == self.uri and known.get("run_id"):
            try:
                run = self.client.get_run(known["run_id"])
            except Exception:  # deleted, or another store's id
                run = None
            if run is not None and run.info.lifecycle_stage == "active":
                self.run_id, self.previous_status = run.info.run_id, run.info.status
                self.client.update_run(self.run_id, status="RUNNING")
        if self.run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=self.run_dir.name, tags={
                "kit.run_dir": str(self.run_dir.resolve())})
            self.run_id = run.info.run_id
            self.run_dir.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"tracking_uri": self.uri, "experiment_id": self.experiment_id,
                                          "run_id": self.run_id}, indent=2) + "\n")
            say(f"MLflow: recording {self.run_dir} as run {self.run_id} at {self.uri}")
        self._log_params()

    def _log_params(self) -> None:
        from mlflow.entities import Param

        from kit.seeing.runs import flatten, value_text

        path = self.run_dir / "config.json"
        if not path.is_file():
            return
        logged = self.client.get_run(self.run_id).data.params
        params = {k: value_text(v)[:6000] for k, v in flatten(json.loads(path.read_text())).items()}
        clashes = [k for k, v in params.items() if k in logged and logged[k] != v]
        if clashes:  # MLflow params are immutable: a run's config changed under the same record
            say(f"warning: MLflow run {self.run_id} keeps its earlier {', '.join(clashes)}; config.json now "
                f"differs there")
        new = [Param(k, v) for k, v in params.items() if k not in logged]
        for i in range(0, len(new), BATCH):
            self.client.log_batch(self.run_id, params=new[i:i + BATCH])

    def log_metrics(self, values: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        self.start()
        if self.run_id is None:
            return
        now = int(time.time() * 1000)
        metrics = []
        for key, value in values.items():
            try:
                metrics.append(Metric(key, float(value), now, step))
            except (TypeError, ValueError):  # a non-numeric log entry: nothing to plot
                continue
        self._guard(lambda: self.client.log_batch(self.run_id, metrics=metrics), "log metrics")

    def close(self, outcome: str) -> None:
        """Log the stage's results and end the run (see `recording`)."""
        exported = (self.export_dir / "export.json").is_file() and (
            (self.export_dir / "export.json").stat().st_mtime >= self.began - 1)
        if self.run_id is None and not (outcome == "FINISHED" or (self.stage == "export" and exported)):
            return  # failed before anything was trained or exported: no run to record
        self.start()
        if self.run_id is None:
            return
        self._guard(lambda: self._log_results(exported), "log the results")
        status = outcome
        if self.stage == "export" and self.previous_status is not None:
            status = self.previous_status  # an export adds to the training's record, whatever its outcome
        if status == "RUNNING":
            return
        self._guard(lambda: self.client.set_terminated(self.run_id, status=status), "end the run")
        if not self.broken:
            say(f"MLflow: {self.stage} of {self.run_dir} recorded in run {self.run_id} ({status}) at {self.uri}")

    def _log_results(self, exported: bool) -> None:
        from kit.seeing.runs import export_summary, is_run, read_run

        if self.stage == "export":
            summary = export_summary(self.export_dir / "export.json") if exported else None
            if summary:
                self.log_metrics(export_metrics(summary))
                self.client.set_tag(self.run_id, "kit.export", "passed" if summary["passed"] else
                                    f"failed: {', '.join(summary['failed'])}")
                self.client.log_artifact(self.run_id, str(self.export_dir / "export.json"), "export")
            if is_run(self.run_dir) and (self.run_dir / "report.html").is_file():  # kit export refreshed it
                self.client.log_artifact(self.run_id, str(self.run_dir / "report.html"))
            return
        run = read_run(self.run_dir)
        self.log_metrics(run_metrics(run))
        for key, value in {"kit.state": run.state, "kit.recipe": run.recipe, "kit.model": run.model}.items():
            self.client.set_tag(self.run_id, key, value)
        for name in ("config.json", "cv.json", "report.md", "report.html"):
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        for part in sorted([*self.run_dir.glob("fold*"), *self.run_dir.glob("full*")]):
            for name in ("metrics.json", "history.csv"):
                if (part / name).is_file():
                    self.client.log_artifact(self.run_id, str(part / name), part.name)

    def _guard(self, action, what: str) -> None:
        """Run an MLflow call; a failure is said once and stops the recording, never the training."""
        if self.broken:
            return
        try:
            action()
        except Exception as err:
            self.broken = True
            say(f"warning: MLflow at {self.uri}: could not {what} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); training and export go on unrecorded")


def run_metrics(run) -> dict[str, float]:
    """The end-of-training numbers of a kit.seeing.runs.Run, as MLflow metrics."""
    metrics = {"folds_finished": len(run.folds), "full_fits_finished": len(run.full),
               "train_seconds": run.train_seconds}
    if run.cv_accuracy is not None:
        metrics["cv_accuracy"] = run.cv_accuracy
    if run.fold_std is not None:
        metrics["cv_fold_std"] = run.fold_std
    for k, m in run.folds.items():
        metrics[f"fold{k}/best_val_accuracy"] = m["val_accuracy"]
        metrics.update({f"fold{k}/{key}": m[key] for key in ("best_epoch", "seconds") if m.get(key) is not None})
    for k, m in run.full.items():
        metrics.update({f"full{k}/{key}": m[key] for key in ("epochs", "seconds") if m.get(key) is not None})
    return metrics


def export_metrics(summary: dict) -> dict[str, float]:
    """kit.seeing.runs.export_summary as MLflow metrics: every gate 1 (ok) or 0 (failed), size, latency, parity."""
    metrics = {"export/passed": float(summary["passed"]), "export/size_mb": summary["size_mb"],
               "export/fp16": float(summary["fp16"]), "export/models": summary["models"]}
    for key in ("latency_mean_ms", "latency_p95_ms", "parity_max_abs_diff"):
        if summary[key] is not None:
            metrics[f"export/{key}"] = summary[key]
    metrics.update({f"export/gate_{name}": float(ok) for name, ok in summary["gates"].items()})
    return metrics
