"""One writer per run, as a user meets it with two terminals: a second kit train (or kit cv) on a run being trained
is refused in one line and the run comes out intact; a writer killed with kill -9 is taken over by --resume, which
continues from its last epoch; a damaged run file is one line naming it and the fix, and nothing else is lost."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.runfiles import read_history
from tests.training.test_train_resume import kit

runner = CliRunner()


def wait_for_epoch(proc, state: Path, epoch: int = 1) -> None:
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["epoch"] >= epoch:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"the writer ended ({proc.poll()}) before its backup recorded epoch {epoch}")


EPOCHS = 4
TRAIN = ["--folds", "2", "--fold", "0", "--epochs", str(EPOCHS), "--model", "llama_tiny", "--set",
         "preprocess.max_len=16"]


@pytest.fixture(scope="module")
def crashed(tiny_cache, tmp_path_factory) -> dict:
    """The two-terminal walk: `kit train` in one process; once it finished an epoch, kit train --resume and kit cv
    on its run from another, and kit runs; then kill -9 (a power cut, as the writer sees it), NULs left in its
    history.csv as two writers left them, and kit train --resume. What each command answered, and the run."""
    run = tmp_path_factory.mktemp("two-terminals") / "rr"
    writer = kit("train", "--cache", str(tiny_cache), "--out", str(run), *TRAIN)
    state = run / "fold0" / "backup" / "state.json"
    seen = {"pid": writer.pid, "run": run}
    try:
        wait_for_epoch(writer, state)
        seen["refused"] = [runner.invoke(app, args) for args in (["train", "--resume", str(run)], ["cv", str(run)])]
        seen["listed"] = runner.invoke(app, ["runs", str(run)])  # a reader keeps working
        seen["alive"] = writer.poll() is None
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    seen["killed"] = writer.returncode == -signal.SIGKILL
    seen["done"] = json.loads(state.read_text())["epoch"]
    with open(run / "fold0" / "history.csv", "ab") as f:  # what two writers left in the issue: a run of NULs
        f.write(b"\0" * 64 + b"23\n")
    seen["resumed"] = runner.invoke(app, ["train", "--resume", str(run)])
    return seen


def test_a_second_writer_is_refused_and_a_killed_one_is_taken_over(crashed):
    run, pid, done = crashed["run"], crashed["pid"], crashed["done"]
    assert crashed["alive"] and crashed["killed"], "the writer trained on through the refusals until killed"
    for refused in crashed["refused"]:
        assert refused.exit_code == 1, refused.output
        line = refused.output.strip().splitlines()
        assert len(line) == 1 and line[0].startswith(f"Error: {run}: kit train (PID {pid}, started "), line
        assert line[0].endswith(f"is writing this run: wait for it to finish, or stop it (kill {pid})")
    listed = crashed["listed"]
    assert listed.exit_code == 0, listed.output
    assert "being written: fold0 at epoch" in listed.output and f"kit train, PID {pid}" in listed.output

    resumed = crashed["resumed"]
    assert resumed.exit_code == 0, resumed.output
    assert f"kit train (PID {pid}" in resumed.output and "taking this run over" in resumed.output
    assert f"rewritten from the {done} epochs its backup keeps" in resumed.output
    assert f"resuming after epoch {done}" in resumed.output
    history = read_history(run / "fold0" / "history.csv", "")
    assert history["epoch"] == list(range(EPOCHS)), "every epoch once, the killed writer's and the resumed ones"
    metrics = json.loads((run / "fold0" / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] == done and np.isfinite(metrics["val_accuracy"])
    assert json.loads((run / "cv.json").read_text())["fold_accuracy"] == {"0": metrics["val_accuracy"]}
    assert not (run / "fold0" / "backup").exists() and (run / ".lock").read_text() == ""


@pytest.fixture
def run(crashed, tmp_path) -> Path:
    """A copy of the finished run to damage."""
    copy = tmp_path / "run"
    shutil.copytree(crashed["run"], copy)
    return copy


def error_line(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_each_damaged_run_file_is_one_line_naming_it_and_the_fix(run):
    fold = run / "fold0"
    retrain = f"delete {fold}, then kit train --resume {run} trains fold0 again (the rest of the run is kept)"
    kept = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "report.html"}

    oof = (fold / "oof.npz").read_bytes()
    (fold / "oof.npz").write_bytes(oof[:100])  # cut short
    line = error_line(["cv", str(run)])
    assert line.startswith(f"Error: {fold / 'oof.npz'}: damaged (not a readable npz") and line.endswith(retrain)
    (fold / "oof.npz").write_bytes(oof)

    metrics = (fold / "metrics.json").read_bytes()
    (fold / "metrics.json").write_bytes(b'{"fold": 0, "val_acc' + b"\0" * 40)
    line = error_line(["export", str(run), "--top", "1"])
    assert line == (f"Error: {fold / 'metrics.json'}: damaged (40 NUL bytes from byte 20: a write cut short, "
                    f"or two writers): {retrain}")
    assert not (run / "export").exists(), "the refused export left no folder"
    listed = runner.invoke(app, ["runs", str(run)])  # readers: one note, and the rest of the table
    assert listed.exit_code == 0 and f"fold0/metrics.json: damaged (40 NUL bytes" in listed.output, listed.output
    (fold / "metrics.json").write_bytes(metrics)

    history = fold / "history.csv"
    history.write_bytes(history.read_bytes() + b"\0" * 16 + b"0.5,0.1\n")
    page = runner.invoke(app, ["report", str(run)])  # the page is written, the damaged curve is a line
    assert page.exit_code == 0 and f"warning: {history}: damaged (16 NUL bytes" in page.output, page.output
    assert "cross-validation" in (run / "report.html").read_text().lower()

    state = fold / "backup" / "state.json"  # fold 0 unfinished, its backup cut short
    (fold / "metrics.json").unlink()
    state.parent.mkdir()
    state.write_text('{"epoch": 1, "weights": "epoch1.wei')
    line = error_line(["train", "--resume", str(run)])
    assert line.startswith(f"Error: {state}: damaged (cut short or not JSON: ") and line.endswith(retrain)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "report.html"} == kept

    (run / "config.json").write_bytes(b"\0" * 8)
    line = error_line(["train", "--resume", str(run)])
    assert line.startswith(f"Error: {run / 'config.json'}: damaged, not valid JSON")

    (run / "run.json").write_text('{"cache": "x", "n_fol')
    line = error_line(["train", "--resume", str(run)])
    assert line.startswith(f"Error: {run / 'run.json'}: damaged (cut short or not JSON") and line.endswith(
        f"delete it, then give again the kit train command that started {run} (its finished folds and full fits are "
        "kept)")

    (run / "kaggle").mkdir()
    (run / "kaggle" / "state.json").write_text("[1, 2]")
    line = error_line(["kaggle", "status", str(run)])
    assert line.startswith(f"Error: {run / 'kaggle' / 'state.json'}: damaged (a JSON list, not the object the kit "
                           "writes): restore it")
