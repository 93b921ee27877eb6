"""The submission kernel (run locally in a temp dir) and kit submit against the Kaggle stub.

The stub really runs the pushed kernel (python, Kaggle's input/working layout), so a round trip proves that the
rendered kernel finds the uploaded model, checks it on a real competition sequence and writes submission.zip.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.kaggle.submit import DATASET_SLUG, KERNEL_SLUG, STATE_FILE, render_kernel
from tests.kaggle_stub import KaggleStub, read_competition, sign_in

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "kernels" / "submission.py"
OWNER = "kit-tester"
# TensorFlow's own notice that tf.lite.Interpreter is deprecated: the kernel still tries it second, as the scorer's
# tflite_runtime is rarely installed and Kaggle's image has TensorFlow.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")


def build_tflite(path: Path, input_name: str = "inputs") -> Path:
    """A tiny model meeting the contract (input `inputs` [None, 543, 3] float32, output `outputs` [250], NaN -> 0);
    another `input_name` breaks the contract the way a wrongly exported model does."""
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal([3, 250], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 543, 3], tf.float32, name=input_name)])
        def __call__(self, frames):
            x = tf.where(tf.math.is_nan(frames), tf.zeros_like(frames), frames)
            return {"outputs": tf.nn.softmax(tf.linalg.matvec(self.w, tf.reduce_mean(x, axis=[0, 1]), True))}

    module = Tiny()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path


def make_run(run_dir: Path, model: Path) -> Path:
    """A run folder as kit export leaves it: export/model.tflite, export/submission.zip, export/export.json."""
    export = run_dir / "export"
    export.mkdir(parents=True)
    (export / "model.tflite").write_bytes(model.read_bytes())
    with zipfile.ZipFile(export / "submission.zip", "w") as zf:
        zf.write(model, "model.tflite")
    (export / "export.json").write_text(json.dumps({"model": "tiny"}))
    return run_dir


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {"good": build_tflite(folder / "good" / "model.tflite"),
            "bad": build_tflite(folder / "bad" / "model.tflite", input_name="frames")}


@pytest.fixture(scope="module")
def competition(synthetic) -> dict[str, bytes]:
    return read_competition(synthetic(2, 2, 1, seed=1) / "data")


@pytest.fixture
def stub(tmp_path, competition, monkeypatch):
    with KaggleStub(tmp_path / "kaggle", competition, username=OWNER) as server:
        sign_in(monkeypatch, server, tmp_path / "home")
        yield server


def kaggle_input(root: Path, model: Path, files: dict[str, bytes]) -> Path:
    """/kaggle/input as a kernel sees it: the model's dataset and the competition's data."""
    (root / DATASET_SLUG).mkdir(parents=True)
    (root / DATASET_SLUG / "model.tflite").write_bytes(model.read_bytes())
    for name, data in files.items():
        (root / "asl-signs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "asl-signs" / name).write_bytes(data)
    return root


def submit(*args: str):
    return CliRunner().invoke(app, ["submit", *args, "--poll", "0.05"])


def test_kernel_writes_submission_zip(models, competition, tmp_path, capsys):
    """The kernel checks a good model on real sequences and writes submission.zip holding exactly model.tflite."""
    main = runpy.run_path(str(KERNEL), run_name="kernel")["main"]  # the script, as Kaggle runs it
    inputs = kaggle_input(tmp_path / "input", models["good"], competition)
    assert main(["--input", str(inputs), "--output", str(tmp_path / "working")]) == 0
    with zipfile.ZipFile(tmp_path / "working" / "submission.zip") as zf:
        assert zf.namelist() == ["model.tflite"] and zf.read("model.tflite") == models["good"].read_bytes()
    out = capsys.readouterr().out
    assert "interpreter: " in out and "3 real sequences OK" in out


def test_kernel_refuses_a_wrong_signature(models, competition, tmp_path, capsys):
    """A model whose input is not named `inputs` fails the kernel, saying so, and no submission.zip is written."""
    main = runpy.run_path(str(KERNEL), run_name="kernel")["main"]
    inputs = kaggle_input(tmp_path / "input", models["bad"], competition)
    assert main(["--input", str(inputs), "--output", str(tmp_path / "working")]) == 1
    assert "CONTRACT ERROR: serving_default takes ['frames'], expected exactly ['inputs']" in capsys.readouterr().err
    assert not (tmp_path / "working" / "submission.zip").exists()


def test_rendered_kernel_refuses_a_stale_model(models, competition, tmp_path, capsys):
    """The rendered kernel knows the sha256 of the model it was pushed for: an older dataset version is refused."""
    render_kernel(tmp_path / "kernel", OWNER, hashlib.sha256(b"another model").hexdigest())
    meta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert meta["id"] == f"{OWNER}/{KERNEL_SLUG}" and meta["dataset_sources"] == [f"{OWNER}/{DATASET_SLUG}"]
    assert meta["competition_sources"] == ["asl-signs"] and meta["enable_internet"] is False
    kernel = runpy.run_path(str(tmp_path / "kernel" / "submission.py"), run_name="kernel")
    inputs = kaggle_input(tmp_path / "input", models["good"], competition)
    assert kernel["main"](["--input", str(inputs), "--output", str(tmp_path / "working")]) == 1
    assert "the dataset version may still be processing" in capsys.readouterr().err


def test_submit_round_trip(stub, models, tmp_path):
    """kit submit RUN_DIR: private dataset, kernel pushed and run, kernel version submitted, public score printed;
    a second run sends nothing new and prints the same score."""
    run = make_run(tmp_path / "run", models["good"])
    model = models["good"].read_bytes()
    sha = hashlib.sha256(model).hexdigest()
    result = submit(str(run), "--message", "first")
    assert result.exit_code == 0, result.output
    assert "public score: 0.7312" in result.stdout
    create = stub.calls("CreateDataset")[0].body
    assert create["isPrivate"] is True and stub.datasets[f"{OWNER}/{DATASET_SLUG}"][-1]["model.tflite"] == model
    push = stub.calls("SaveKernel")[0].body
    assert push["slug"] == f"{OWNER}/{KERNEL_SLUG}" and push["datasetDataSources"] == [f"{OWNER}/{DATASET_SLUG}"]
    assert push["competitionDataSources"] == ["asl-signs"] and push["enableInternet"] is False
    assert f'EXPECTED_SHA256 = "{sha}"' in push["text"]
    ran = stub.kernels[f"{OWNER}/{KERNEL_SLUG}"].versions[0]
    assert ran["status"] == "COMPLETE" and "real sequences OK" in ran["log"], ran["log"]
    sent = stub.calls("CreateCodeSubmission")[0].body
    assert (sent["kernelOwner"], sent["kernelSlug"], sent["kernelVersion"], sent["fileName"]) == \
        (OWNER, KERNEL_SLUG, 1, "submission.zip")
    assert sent["submissionDescription"] == f"first [kit {sha[:12]} v1]"
    state = json.loads((run / "export" / STATE_FILE).read_text())
    assert state["public_score"] == "0.7312" and state["kernel_version"] == 1

    mutating = ("StartBlobUpload", "CreateDataset", "CreateDatasetVersion", "SaveKernel", "CreateCodeSubmission")
    before = {m: len(stub.calls(m)) for m in mutating}
    again = submit(str(run))
    assert again.exit_code == 0, again.output
    assert {m: len(stub.calls(m)) for m in mutating} == before
    assert "public score: 0.7312" in again.stdout


def test_failed_kernel_is_reported_with_its_log_url(stub, models, tmp_path):
    """A model the kernel refuses: the error names the kernel version, its log URL and the log's last lines."""
    run = make_run(tmp_path / "run", models["bad"])
    result = submit(str(run))
    assert result.exit_code == 1
    error = result.output.splitlines()[-1]
    assert error.startswith(f"Error: kernel {OWNER}/{KERNEL_SLUG} version 1 ended in error (The script exited with "
                            f"status 1): see its log at https://www.kaggle.com/code/{OWNER}/{KERNEL_SLUG}/log")
    assert "CONTRACT ERROR: serving_default takes ['frames']" in error
    assert not stub.calls("CreateCodeSubmission")


def test_rerun_after_failures_continues_where_it_stopped(stub, models, tmp_path):
    """--no-wait returns while the kernel runs; a 403 on submit and a kernel error each stop a run; every re-run
    goes on from there: one dataset upload in all, no second push until a kernel actually failed."""
    run = make_run(tmp_path / "run", models["good"])
    stub.kernel_error = "Kernel died (stub)"
    failed = submit(str(run))
    assert failed.exit_code == 1 and "ended in error (Kernel died (stub)): see its log at" in failed.output

    stub.rules_accepted = False
    waiting = submit(str(run), "--no-wait")
    assert waiting.exit_code == 0, waiting.output
    assert f"kernel {OWNER}/{KERNEL_SLUG} version 2 is running; run kit submit" in waiting.stdout
    refused = submit(str(run))
    assert refused.exit_code == 1
    assert refused.output.splitlines()[-1] == (
        "Error: Kaggle refused (HTTP 403): accept the competition rules at "
        "https://www.kaggle.com/competitions/asl-signs/rules, then run kit submit again")

    stub.rules_accepted = True
    done = submit(str(run))
    assert done.exit_code == 0, done.output
    assert "public score: 0.7312" in done.stdout
    assert len(stub.calls("CreateDataset")) == 1 and not stub.calls("CreateDatasetVersion")
    assert len(stub.calls("SaveKernel")) == 2 and len(stub.submissions) == 1


def test_new_model_makes_a_new_dataset_version(stub, models, tmp_path):
    """Another model for the same user goes up as a new version of the same dataset, not a second dataset."""
    first = make_run(tmp_path / "a", models["good"])
    stub.kernel_error = "stop after the push"
    submit(str(first))
    second = make_run(tmp_path / "b", models["bad"])
    stub.kernel_error = "stop after the push"
    result = submit(str(second))
    assert "ended in error (stop after the push)" in result.output
    assert len(stub.calls("CreateDataset")) == 1 and len(stub.calls("CreateDatasetVersion")) == 1
    assert stub.datasets[f"{OWNER}/{DATASET_SLUG}"][-1]["model.tflite"] == models["bad"].read_bytes()


def test_dry_run_sends_nothing(stub, models, tmp_path, monkeypatch):
    """--dry-run renders the dataset and kernel folders and lists the steps; the stub sees no request at all,
    even with an access token that importing the client would check online."""
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token-that-must-not-travel")
    run = make_run(tmp_path / "run", models["good"])
    result = submit(str(run), "--dry-run")
    assert result.exit_code == 0, result.output
    assert stub.count == 0
    rendered = run / "export" / "kaggle"
    assert sorted(p.relative_to(rendered).as_posix() for p in rendered.rglob("*") if p.is_file()) == [
        "dataset/dataset-metadata.json", "dataset/model.tflite", "kernel/kernel-metadata.json",
        "kernel/submission.py"]
    assert "dry run: nothing sent" in result.stdout and "competition_submit_code(asl-signs" in result.stdout
    assert not (run / "export" / STATE_FILE).exists()


def test_submit_takes_a_zip_or_a_model_file(models, tmp_path, monkeypatch):
    """A submission.zip or a model.tflite works as well as a run folder; a zip with more than the model does not."""
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    run = make_run(tmp_path / "run", models["good"])
    for target in (run / "export" / "submission.zip", run / "export" / "model.tflite"):
        result = submit(str(target), "--dry-run")
        assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "extra.zip", "w") as zf:
        zf.write(models["good"], "model.tflite")
        zf.writestr("notes.txt", "hi")
    result = submit(str(tmp_path / "extra.zip"), "--dry-run")
    assert result.exit_code == 1
    assert result.output == (f"Error: {tmp_path / 'extra.zip'}: holds ['model.tflite', 'notes.txt']; "
                             "a submission holds exactly model.tflite\n")


def with_cv(run: Path, accuracy: float, finished: int, planned: int) -> Path:
    """Give a run folder the files kit train leaves: run.json (the planned folds), finished folds, cv.json."""
    (run / "run.json").write_text(json.dumps({"n_folds": planned, "folds": list(range(planned)), "cache": "cache"}))
    (run / "config.json").write_text("{}")
    for k in range(finished):
        (run / f"fold{k}").mkdir()
        (run / f"fold{k}" / "metrics.json").write_text(json.dumps({"fold": k, "val_accuracy": accuracy}))
    (run / "cv.json").write_text(json.dumps({"oof_accuracy": accuracy, "chance": 0.1,
                                             "fold_accuracy": {str(k): accuracy for k in range(finished)}}))
    return run


def test_bare_submit_takes_the_best_exported_run_and_says_so(models, tmp_path, monkeypatch):
    """With no run named, kit submit takes the exported run with the best CV (not the newest), says which it
    picked, and prints that run's CV, folds finished of planned and models kept."""
    monkeypatch.chdir(tmp_path)
    best = with_cv(make_run(tmp_path / "runs" / "best", models["good"]), 0.344, 3, 3)
    with_cv(make_run(tmp_path / "runs" / "newer", models["good"]), 0.0, 1, 3)
    result = submit("--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == ("picked runs/best: the best CV of 2 exported runs under runs (name a run to submit "
                        "another)")
    assert lines[2] == "run runs/best: CV 0.344 over 3 of 3 folds (chance 0.100); its export keeps 0 models"
    assert (best / "export" / "kaggle" / "dataset" / "model.tflite").read_bytes() == models["good"].read_bytes()


def test_a_partial_or_below_chance_run_needs_force(models, tmp_path, monkeypatch):
    """Quality before upload: a run with 1 of 3 folds, or a CV not above chance, is refused in one line naming the
    command that finishes it and --force; the dry run shows the same; --force goes on (here to the credentials)."""
    monkeypatch.chdir(tmp_path)
    partial = with_cv(make_run(Path("runs") / "partial", models["good"]), 0.0, 1, 3)
    result = submit(str(partial))
    assert result.exit_code == 1
    refusal = ("runs/partial: partial: 1 of 3 folds finished; CV 0.000 is not above chance (0.100): finish it (kit "
               "train --cache cache --config runs/partial/config.json --out runs/partial --folds 3), or submit it "
               "anyway with --force")
    assert result.output == f"Error: {refusal}\n"
    dry = submit(str(partial), "--dry-run")
    assert dry.exit_code == 0 and f"without --force, kit submit refuses it: {refusal}" in dry.stdout
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    forced = submit(str(partial), "--force")
    assert forced.exit_code == 1 and "no Kaggle credentials found" in forced.output.splitlines()[-1]


