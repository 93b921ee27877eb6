"""kit kaggle train / status / cancel with the real Kaggle client against the loopback stub, and the training
kernel run locally as `python kernels/train.py --input DIR --output DIR`.

Two tests really train (the kernel script on its own, and a round trip in which the stub runs the pushed kernels
as subprocesses); the others play each kernel's run with `fake_kernel`, which writes the outputs and manifest the
real script writes (with the script's own manifest code), so that failures, refusals and kills cost no training.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.kaggle import api as kaggle_api
from kit.kaggle import output as kaggle_output
from kit.cli import app
from kit.kaggle.wheel import build
from tests.environment import command, finished, wait_for
from tests.kaggle_stub import KaggleStub, read_competition, sign_in
from tests.test_runlock import hold

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "kernels" / "train.py"
OWNER = "kit-tester"
TINY = ["--set", 'model.name="llama_tiny"', "--set", "preprocess.max_len=32", "--set", "train.epochs=1"]


def kernel_module():
    spec = importlib.util.spec_from_file_location("kit_training_kernel", KERNEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_AST = threading.Lock()  # the stub runs kernels in threads, and CPython 3.11's ast is not thread-safe (gh-106905:
# "SystemError: AST constructor recursion depth mismatch" killed a fake kernel when two were released at once)


def job_of(text: str) -> dict:
    line = next(line for line in text.splitlines() if line.startswith("JOB = "))
    with _AST:
        return ast.literal_eval(line[len("JOB = "):].split("  # ")[0])


def fake_kernel(body: dict, inputs: Path, working: Path) -> tuple[int, str, str]:
    """What kernels/train.py leaves in /kaggle/working after training the job's folds or full fits (random weights,
    real formats), with the manifest written by the script's own code."""
    job = job_of(body["text"])
    rng = np.random.default_rng(len(job["folds"]))
    run = working / "run"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(job["config"]))
    (run / "folds.csv").write_text("sequence_id,participant_id,fold\n1,7,0\n")
    for k in job["folds"]:
        member = run / f"{job['kind']}{k}"
        (member / "tensorboard").mkdir(parents=True)
        (member / "tensorboard" / "events.out").write_bytes(rng.bytes(100))
        (member / "model.weights.h5").write_bytes(rng.bytes(300_000))
        (member / "history.csv").write_text("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
                                            "0,0.5,0.001,1.2,0.4,1.3\n")
        if job["kind"] == "full":
            (member / "metrics.json").write_text(json.dumps({"member": k, "validated": False, "seed": k,
                                                             "epochs": job["config"]["train"]["epochs"]}))
            continue
        np.savez(member / "oof.npz", sequence_ids=np.arange(4) + 10 * k, participant_ids=np.full(4, k),
                 labels=np.arange(4) % 3, probs=rng.random((4, 250)).astype("float32"))
        (member / "metrics.json").write_text(json.dumps({"fold": k, "val_accuracy": 0.5, "best_epoch": 1 + k}))
    kernel_module().write_manifest(working, job["kind"], job["folds"], {"wheel": job["wheel"], "folds": job["folds"]})
    return 0, f"kit: {job['kind']}s {job['folds']} trained\n", ""


@pytest.fixture(scope="module")
def competition(synthetic) -> dict[str, bytes]:
    return read_competition(synthetic(3, 3, 2, seed=3) / "data")


@pytest.fixture
def stub(tmp_path, competition, monkeypatch):
    monkeypatch.setattr(kaggle_api, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    monkeypatch.setattr(kaggle_output, "DOWNLOAD_DELAYS", (0.0, 0.0))
    with KaggleStub(tmp_path / "kaggle", competition, username=OWNER) as server:
        sign_in(monkeypatch, server, tmp_path / "home")
        server.kernel_runner = fake_kernel
        yield server


def kaggle(*args: str):
    extra = ["--poll", "0.05"] if args[0] == "train" else []
    return CliRunner().invoke(app, ["kaggle", *args, *extra])


def start(run: Path, *args: str):
    return kaggle("train", "--out", str(run), "--folds", "3", *TINY, *args)


def state(run: Path) -> dict:
    return json.loads((run / "kaggle" / "state.json").read_text())


def statuses(run: Path) -> list[str]:
    """The recorded status of each kernel of the run, sorted; none before the state file exists."""
    try:
        return sorted(g["status"] for g in state(run)["groups"].values())
    except FileNotFoundError:
        return []


def slugs(run: Path) -> list[str]:
    return list(state(run)["groups"])


@pytest.mark.slow
def test_kernel_script_trains_locally_from_the_wheel(competition, tmp_path):
    """python kernels/train.py --input DIR --output DIR on a competition-layout folder (and a dataset folder with
    the kit's wheel) installs that wheel, trains the fold and lists every output file with its size and sha256."""
    for name, data in competition.items():
        (tmp_path / "input" / "asl-signs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "input" / "asl-signs" / name).write_bytes(data)
    wheel = build()
    (tmp_path / "input" / "asl-signs-kit-wheel").mkdir()
    (tmp_path / "input" / "asl-signs-kit-wheel" / wheel.name).write_bytes(wheel.data)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(KERNEL), "--input", str(tmp_path / "input"), "--output", str(out),
                           "--scratch", str(tmp_path / "scratch"), "--folds", "3", "--fold", "1", *TINY],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"kit: installed {wheel.name} into {tmp_path / 'scratch' / 'kitlib'}" in proc.stdout
    manifest = json.loads((out / "kit-manifest.json").read_text())
    assert manifest["folds_done"] == [1] and manifest["wheel"] == wheel.name
    assert {"run/fold1/model.weights.h5", "run/fold1/oof.npz", "run/fold1/metrics.json", "run/folds.csv"} <= set(
        manifest["files"])
    module = kernel_module()
    for name, meta in manifest["files"].items():
        assert meta == {"size": (out / name).stat().st_size, "sha256": module.sha256(out / name)}, name
    assert not (out / "cache").exists() and not list(out.rglob("*.parquet"))  # the cache stays in scratch


@pytest.mark.slow
def test_round_trip_trains_in_kernels_and_a_rerun_sends_nothing(stub, tmp_path):
    """Two kernels (folds 0 and 2 of 3) pushed at once on T4 x2 with the competition and the wheel dataset attached;
    the stub runs the rendered script for real; both come back verified into a run that kit cv and kit export
    take as if trained here.
    A second kit kaggle train uploads, pushes and downloads nothing."""
    stub.kernel_runner = None  # really run the pushed kernels/train.py
    run = tmp_path / "runs" / "k3"
    result = start(run, "--fold", "0", "--fold", "2")
    assert result.exit_code == 0, result.output
    assert "cross-validation on unseen signers" in result.stdout
    pushes = [c.body for c in stub.calls("SaveKernel")]
    assert sorted(job_of(p["text"])["folds"] for p in pushes) == [[0], [2]]
    for push in pushes:
        assert push["machineShape"] == "NvidiaTeslaT4" and push["enableInternet"] is True
        assert push["enableGpu"] is False and push["enableTpu"] is False and not push.get("dockerImage")
        assert push["competitionDataSources"] == ["asl-signs"]
        assert push["datasetDataSources"] == [f"{OWNER}/asl-signs-kit-wheel"]
    runs = [v for k in stub.kernels.values() for v in k.versions]
    assert all(v["status"] == "COMPLETE" for v in runs), [v["log"] for v in runs]
    assert all(c.body["versionLabel"] == "v1" for c in stub.calls("GetKernelSessionStatus"))
    for k in (0, 2):
        assert (run / f"fold{k}" / "metrics.json").is_file() and (run / f"fold{k}" / "model.weights.h5").is_file()
    assert not list(run.rglob("*.part")) and not (run / "fold1").exists()
    assert json.loads((run / "cv.json").read_text())["fold_accuracy"].keys() == {"0", "2"}
    assert CliRunner().invoke(app, ["cv", str(run)]).exit_code == 0
    exported = CliRunner().invoke(app, ["export", str(run)])  # kaggle train -> export -> submit
    assert exported.exit_code == 0, exported.output
    assert (run / "export" / "submission.zip").is_file()

    before = (len(stub.calls("SaveKernel")), len(stub.calls("StartBlobUpload")), len(stub.gets("model.weights.h5")))
    again = start(run, "--fold", "0", "--fold", "2")
    assert again.exit_code == 0, again.output
    assert (len(stub.calls("SaveKernel")), len(stub.calls("StartBlobUpload")),
            len(stub.gets("model.weights.h5"))) == before


def test_dry_run_renders_everything_and_sends_nothing(stub, tmp_path, monkeypatch):
    """--dry-run: the wheel dataset and one kernel per fold group rendered, the plan listed; no request at all.
    The TPU shape trains with JAX; no deprecated enable_gpu/enable_tpu and no pinned docker image. --parallel
    defaults to the accelerator's limit (1 on TPU), and each kernel's name says its accelerator."""
    run = tmp_path / "runs" / "tpu"
    result = start(run, "--accelerator", "tpu", "--folds-per-kernel", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert stub.count == 0
    assert "dry run: nothing sent" in result.stdout and f"{OWNER}/asl-signs-kit-wheel" in result.stdout
    assert "at most 1 at once" in result.stdout
    kernels = sorted((run / "kaggle" / "kernels").iterdir())
    assert [k.name.split("-")[-2:] for k in kernels] == [["tpu", "f01"], ["tpu", "f2"]]
    assert [job_of((k / "train.py").read_text())["folds"] for k in kernels] == [[0, 1], [2]]
    meta = json.loads((kernels[0] / "kernel-metadata.json").read_text())
    assert meta["machine_shape"] == "TpuV5E8" and meta["competition_sources"] == ["asl-signs"]
    assert not {"enable_gpu", "enable_tpu", "docker_image"} & set(meta)
    job = job_of((kernels[0] / "train.py").read_text())
    assert job["backend"] == "jax" and job["config"]["model"]["name"] == "llama_tiny"
    wheel = next((run / "kaggle" / "dataset").glob("kit-*.whl"))
    assert job["wheel"] == wheel.name and job["wheel_sha256"] == build().sha256


def test_folds_finished_here_are_not_trained_again(stub, tmp_path):
    """A fold already trained in the run folder (kit train --fold 0 on a local GPU) is left out of its kernel."""
    run = tmp_path / "run"
    (run / "fold0").mkdir(parents=True)
    (run / "fold0" / "metrics.json").write_text("{}")
    result = start(run)
    assert result.exit_code == 0, result.output
    assert [job_of(c.body["text"])["folds"] for c in stub.calls("SaveKernel")] == [[1], [2]]
    assert not (run / "fold0" / "model.weights.h5").exists() and (run / "fold1" / "model.weights.h5").is_file()


def test_a_dry_run_or_a_failed_start_is_no_dead_end(stub, tmp_path, monkeypatch):
    """No dead ends: a dry run writes nothing that binds the folder (another config dry-runs and starts there), and a
    start that fails before any kernel is pushed (no credentials; Kaggle unreachable) leaves a folder that the next
    command takes: the same start, another config, or the --resume its error names."""
    run = tmp_path / "k5"
    assert start(run, "--dry-run").exit_code == 0
    assert not (run / "config.json").exists() and not (run / "kaggle" / "state.json").exists()
    other = start(run, "--set", "train.epochs=3", "--dry-run")
    assert other.exit_code == 0, other.output
    resume = kaggle("train", "--resume", str(run), "--dry-run")
    assert resume.exit_code == 1
    assert resume.output.splitlines()[-1] == (f"Error: {run}/kaggle/state.json: missing; start Kaggle training "
                                              f"with kit kaggle train --out {run}")

    monkeypatch.delenv("KAGGLE_KEY")  # no credentials: the real start fails before anything is written
    failed = start(run, "--no-wait")
    assert failed.exit_code == 1 and "no Kaggle credentials" in failed.output
    assert not (run / "config.json").exists()
    monkeypatch.setenv("KAGGLE_KEY", stub.key)

    stub.fail_next(500, rpc="ListDatasetFiles", times=4)  # Kaggle unreachable after the state is written
    down = start(run, "--no-wait")
    assert down.exit_code == 1 and statuses(run) == ["waiting", "waiting"]
    assert stub.calls("SaveKernel") == []
    again = start(run, "--set", "train.epochs=3", "--no-wait")  # another config: nothing was pushed, so it may
    assert again.exit_code == 0, again.output
    assert state(run)["config"]["train"]["epochs"] == 3 and len(stub.calls("SaveKernel")) == 2


def release_once_refused(stub) -> None:
    """Release the held kernels once the stub has answered a second push (refused: the first kernel holds the one
    session), not after a fixed second, which a busy machine spends before its first push (up to 300 s)."""
    deadline = time.monotonic() + 300
    while len([c for c in stub.calls("SaveKernel") if c.status]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stub.release_kernels()


def test_a_busy_slot_waits_and_a_refused_push_is_never_a_second_session(stub, tmp_path):
    """Kaggle runs one more session only: the second kernel is refused ("Maximum batch GPU session count"), kit
    waits for its first kernel to end, then pushes it; every fold group runs exactly once."""
    stub.max_sessions = 1
    stub.hold_kernels()
    threading.Thread(target=release_once_refused, args=(stub,), daemon=True).start()
    run = tmp_path / "run"
    result = start(run)
    assert result.exit_code == 0, result.output
    versions = {ref: len(k.versions) for ref, k in stub.kernels.items()}
    assert sorted(versions.values()) == [1, 1]
    assert len(stub.calls("SaveKernel")) >= 3 and "no free t4 session" in result.output
    assert all((run / f"fold{k}" / "metrics.json").is_file() for k in range(3))


def test_refusals_are_one_line_errors_with_the_fix(stub, tmp_path):
    """No free session with none of this run's kernels running, and a weekly quota used up: one line each,
    naming the fix (and the quota), and nothing is lost: the next run goes on."""
    stub.max_sessions = 0
    busy = start(tmp_path / "run")
    assert busy.exit_code == 1
    assert busy.output.splitlines()[-1].startswith("Error: Kaggle refused the kernel kit-tester/kit-run-")
    assert "other notebooks hold your t4 sessions: stop them or wait" in busy.output

    stub.max_sessions = 2
    stub.fail_next(400, rpc="SaveKernel", message="You have used your weekly GPU quota")
    quota = start(tmp_path / "run")
    assert quota.exit_code == 1
    assert "for quota: You have used your weekly GPU quota; GPU quota: 3.5 of 30 h used this week" in quota.output
    done = start(tmp_path / "run")
    assert done.exit_code == 0, done.output
    assert len(stub.calls("CreateDataset")) == 1 and not stub.calls("CreateDatasetVersion")


def test_html_503_pages_are_retried(stub, tmp_path):
    """An overloaded Kaggle answers 503 with an HTML page (and even 200 with HTML): retried, not a crash."""
    stub.html_next(503, rpc="GetKernelSessionStatus", times=2)
    stub.html_next(200, rpc="ListKernelSessionOutput")
    result = start(tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "Kaggle: 503 while checking the kernel" in result.output
    assert "Kaggle: a web page, not data while listing the output" in result.output


def test_a_failed_kernel_shows_its_log_and_a_rerun_pushes_it_again(stub, tmp_path):
    """A kernel ending in ERROR: the error names it, its log URL and the log's last error line; the other kernel's
    folds are kept; the re-run pushes only the failed group again and finishes."""
    stub.kernel_error = "Traceback (most recent call last):\nValueError: stub kernel blew up"
    run = tmp_path / "run"
    failed = start(run)
    assert failed.exit_code == 1
    error = failed.output.splitlines()[-1]
    assert "ended in error (stub kernel blew up" not in error  # the failure message is Kaggle's, the tail the log's
    assert "see its log at https://www.kaggle.com/code/kit-tester/kit-run-" in error
    assert "it ends: ValueError: stub kernel blew up" in error
    errored = [s for s, g in state(run)["groups"].items() if g["status"] == "error"]
    assert len(errored) == 1
    pushes = len(stub.calls("SaveKernel"))
    again = start(run)
    assert again.exit_code == 0, again.output
    assert len(stub.calls("SaveKernel")) == pushes + 1
    assert stub.calls("SaveKernel")[-1].body["slug"] == f"{OWNER}/{errored[0]}"
    assert all((run / f"fold{k}" / "metrics.json").is_file() for k in range(3))


def test_a_dropped_download_resumes_and_verified_files_are_never_fetched_again(stub, tmp_path):
    """A connection cut mid-file is resumed with a Range request; cut too often, the run stops with the part
    kept; the re-run finishes it without fetching any verified file again."""
    run = tmp_path / "run"
    stub.drop_file("model.weights.h5", after=100_000)
    first = start(run)
    assert first.exit_code == 0, first.output
    ranged = [g for g in stub.gets("model.weights.h5") if g.headers.get("Range") == "bytes=65536-"]
    assert ranged and "connection lost" in first.output

    run2 = tmp_path / "run2"
    stub.drop_file("model.weights.h5", after=50_000, times=20)
    cut = start(run2)
    assert cut.exit_code == 1
    assert cut.output.splitlines()[-1].startswith(f"Error: {run2}/fold")
    assert "the part that arrived is kept: run the same command again" in cut.output
    stub.drop_file("model.weights.h5", after=0, times=0)
    done = start(run2)
    assert done.exit_code == 0, done.output
    fetched = [r.path for r in stub.requests if r.method == "GET" and "__kit-run2-" in r.path
               and not r.path.endswith(("model.weights.h5", "kit-manifest.json"))]
    assert fetched and len(fetched) == len(set(fetched))  # across the cut run and the re-run: each file once
    assert all((run2 / f"fold{k}" / "metrics.json").is_file() for k in range(3))


def test_kill_between_push_and_download_then_rerun(stub, tmp_path):
    """kit kaggle train killed while its kernels run (a user's Ctrl-C or a closed laptop): the re-run follows the
    same versions (no second session of any fold) and downloads them. A kill inside the push itself (Kaggle took
    it, the state file never heard) is caught by asking Kaggle for the kernel's newest version."""
    stub.hold_kernels()
    run = tmp_path / "run"
    proc = train_in_a_subprocess(stub, run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: len(stub.calls("GetKernelSessionStatus")) >= 2, "kit kaggle train to ask both kernels' status",
             proc=proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(stub.calls("SaveKernel")) == 2, proc.stdout.read().decode()
    stub.release_kernels()

    first = state(run)["groups"]
    slug = next(iter(first))
    first[slug].update(version=None, status="waiting", pushing={"at": time.time(), "after": 0})
    (run / "kaggle" / "state.json").write_text(json.dumps({**state(run), "groups": first}))  # killed mid-push
    again = kaggle("train", "--resume", str(run))
    assert again.exit_code == 0, again.output
    assert len(stub.calls("SaveKernel")) == 2 and "was pushed before kit stopped; following it" in again.output
    assert all(len(k.versions) == 1 for k in stub.kernels.values())
    assert all((run / f"fold{k}" / "metrics.json").is_file() for k in range(3))


def train_in_a_subprocess(stub, run: Path, sigint: str = "default", **popen) -> subprocess.Popen:
    """`kit kaggle train` of 3 folds into `run` as its own process, with SIGINT as `sigint` (environment.command)."""
    env = {**os.environ, **stub.env(), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command("-m", "kit", "kaggle", "train", "--out", str(run), "--folds", "3", *TINY,
                                    "--poll", "0.1", sigint=sigint), env=env, **popen)


def both_running(run: Path) -> bool:
    """Both kernels recorded running in the run's state file (not the stub's request log: a request is logged
    before kit records its answer)."""
    return statuses(run) == ["running", "running"]


def test_ctrl_c_while_waiting_says_the_kernels_run_on(stub, tmp_path):
    """Ctrl-C while kernels run: exit 130 with one line on how to follow or stop them; the state keeps them.
    Started as from a terminal (SIGINT at its default), whatever the suite was started with."""
    stub.hold_kernels()
    run = tmp_path / "run"
    proc = train_in_a_subprocess(stub, run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: both_running(run), "both kernels recorded running in state.json", proc=proc)
    proc.send_signal(signal.SIGINT)
    out, err = finished(proc, "kit kaggle train to stop on SIGINT")
    assert proc.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == (
        f"stopped waiting; the pushed kernels keep running on Kaggle: kit kaggle status {run} shows them, kit kaggle "
        f"train --resume {run} follows them and downloads what finished, kit kaggle cancel {run} stops them")
    assert statuses(run) == ["running", "running"]
    stub.release_kernels()


def test_started_with_sigint_ignored_ctrl_c_does_not_stop_it(stub, tmp_path):
    """`nohup kit kaggle train ...`, or a script's background job: SIGINT was ignored when it started, and kit keeps
    it ignored, so a SIGINT (a Ctrl-C in the terminal it came from) does not stop it: it goes on polling, then
    downloads the folds once the kernels finish."""
    stub.hold_kernels()
    run = tmp_path / "run"
    proc = train_in_a_subprocess(stub, run, sigint="ignored", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
    wait_for(lambda: both_running(run), "both kernels recorded running in state.json", proc=proc)
    proc.send_signal(signal.SIGINT)
    asked = len(stub.calls("GetKernelSessionStatus"))
    wait_for(lambda: len(stub.calls("GetKernelSessionStatus")) >= asked + 4,
             "kit kaggle train to go on asking the kernels' status after SIGINT", proc=proc)
    stub.release_kernels()
    out, _ = finished(proc, "kit kaggle train to download the released kernels' folds")
    assert proc.returncode == 0, out
    assert all((run / f"fold{k}" / "metrics.json").is_file() for k in range(3))


def test_status_and_cancel(stub, tmp_path):
    """status: each fold group's state, time since the push, what only its running session holds, and the week's
    quota; cancel lists the kernels and the folds their sessions would lose, asks (no answer: nothing deleted;
    --yes for scripts), deletes them and checks with Kaggle that they stopped; --resume then pushes the
    cancelled folds again."""
    stub.hold_kernels()
    run = tmp_path / "run"
    pushed = start(run, "--no-wait")
    assert pushed.exit_code == 0, pushed.output
    assert "waiting" not in pushed.stdout and "run kit kaggle train --resume" in pushed.stdout
    shown = kaggle("status", str(run))
    assert shown.exit_code == 0, shown.output
    # minutes since the push: 0 unless the machine is busy enough to take one between the push and the status
    assert len(re.findall(r": running, \d+ min \(kernel kit-tester/kit-run-", shown.stdout)) == 2
    assert shown.stdout.count("any it finished exist only inside the running session until it ends") == 2
    assert "quota this week: GPU 3.5 of 30 h used, 26.5 h left, TPU 0.0 of 20 h used" in shown.stdout
    follower = hold(run, "kit kaggle train")  # another terminal follows the run: status reads, cancel waits
    try:
        following = kaggle("status", str(run))
        assert following.exit_code == 0, following.output
        assert f"{run} is being written by kit kaggle train (PID {follower.pid}" in following.stdout
        for refused in (kaggle("cancel", str(run), "--yes"), kaggle("train", "--resume", str(run))):
            assert refused.exit_code == 1 and refused.output.startswith(
                f"Error: {run}: kit kaggle train (PID {follower.pid}, started "), refused.output
        assert not stub.deleted
    finally:
        follower.kill()
        follower.wait()
    asked = CliRunner().invoke(app, ["kaggle", "cancel", str(run)], input="n\n")
    assert asked.exit_code == 0 and "nothing deleted" in asked.stdout and not stub.deleted
    assert "to delete (which stops their sessions):" in asked.output and "deleting the kernel loses them" in asked.output
    assert CliRunner().invoke(app, ["kaggle", "cancel", str(run)]).stdout.strip() == "nothing deleted"  # no answer
    cancelled = kaggle("cancel", str(run), "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.count("deleting kernel kit-tester/kit-run-") == 2
    assert cancelled.stdout.count("deleted, its session stopped (Kaggle reports it gone)") == 2
    assert sorted(stub.deleted) == sorted(f"{OWNER}/{s}" for s in slugs(run))
    assert kaggle("status", str(run)).stdout.count(": cancelled") == 2
    stub.release_kernels()
    resumed = kaggle("train", "--resume", str(run))
    assert resumed.exit_code == 0, resumed.output
    assert len(stub.calls("SaveKernel")) == 4
    assert all((run / f"fold{k}" / "metrics.json").is_file() for k in range(3))


def test_cancel_says_when_kaggle_still_runs_a_deleted_kernel(stub, tmp_path):
    """A session Kaggle still reports running after its kernel was deleted (kaggle-cli issue 937) is said out
    loud, with where to stop it; a finished kernel's folds not yet downloaded are shown as held only by its
    session."""
    stub.hold_kernels()
    stub.sessions_outlive_delete = True
    run = tmp_path / "run"
    assert start(run, "--no-wait", "--fold", "0").exit_code == 0
    cancelled = kaggle("cancel", str(run), "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    slug = slugs(run)[0]
    assert (f"kernel {OWNER}/{slug} (folds [0]): deleted, but Kaggle still reports version 1 running: its session "
            f"may go on using your quota; check https://www.kaggle.com/code/{OWNER}/{slug}") in cancelled.stdout
    stub.release_kernels()
    stub.sessions_outlive_delete = False
    group = {**state(run)["groups"][slug], "status": "complete"}
    from kit.kaggle.train import only_in_session

    assert only_in_session(run, state(run), group) == (
        f"folds [0] finished and exist only in that session's output until kit kaggle train --resume {run} "
        "downloads them (deleting the kernel loses them)")


def test_full_fits_from_the_folds_come_back_beside_them(stub, tmp_path):
    """kit kaggle train --full --from-cv RUN --seeds 3: epochs from the folds' best epochs (1, 2, 3: mean 2), the
    folds' config, kernels of their own (seeds 0+1 and 2, kit train --full --member K there, state in
    RUN/kaggle/full/), the fits downloaded into RUN/full0..2 beside the folds; status lists folds and fits."""
    run = tmp_path / "run"
    assert start(run).exit_code == 0
    result = kaggle("train", "--full", "--from-cv", str(run), "--seeds", "3")
    assert result.exit_code == 0, result.output
    assert "full fits on every signer: 2 epochs: the rounded mean of the best epochs" in result.output
    jobs = [job_of(c.body["text"]) for c in stub.calls("SaveKernel")[2:]]
    assert [(j["kind"], j["folds"], j["n_folds"], j["config"]["train"]["epochs"]) for j in jobs] == [
        ("full", [0, 1], 3, 2), ("full", [2], 3, 2)]
    assert all(c.body["slug"].split("-")[-1] in ("s01", "s2") for c in stub.calls("SaveKernel")[2:])
    for k in range(3):
        assert json.loads((run / f"full{k}" / "metrics.json").read_text())["validated"] is False
    assert "full fits [0, 1, 2] on every signer" in result.stdout and "kit export" in result.stdout
    assert (run / "kaggle" / "full" / "state.json").is_file() and (run / "kaggle" / "state.json").is_file()
    shown = kaggle("status", str(run)).stdout
    assert shown.count("folds [") == 2 and shown.count("full fits [") == 2 and shown.count(": downloaded") == 4
    again = kaggle("train", "--resume", str(run), "--full")
    assert again.exit_code == 0 and len(stub.calls("SaveKernel")) == 4


def test_full_fits_need_an_epoch_count(stub, tmp_path):
    result = kaggle("train", "--out", str(tmp_path / "run"), "--full", *TINY[:4])
    assert result.exit_code == 1 and result.output.splitlines()[-1].startswith(
        "Error: --full needs an epoch count, since no held-out signer can pick one: give --epochs E")


@pytest.mark.slow
def test_rendered_full_fit_kernel_trains_locally(competition, tmp_path):
    """A rendered full-fit kernel, run as python train.py --input DIR --output DIR, trains its full fit on every
    signer (kit train --full --member 1 of --seeds 2) from the wheel and lists its files in the manifest."""
    from kit.config import Config, apply_overrides
    from kit.kaggle.plan import make_full_plan, render_dataset, render_kernel

    base = apply_overrides(Config(), [s for s in TINY[1::2] if not s.startswith("train.epochs")])
    plan, _ = make_full_plan(base, ["train.epochs=1"], tmp_path / "run", OWNER, seeds=2, parallel=2)
    render_dataset(plan)
    folder = render_kernel(plan, (1,), [1])
    inputs = tmp_path / "input"
    for name, data in competition.items():
        (inputs / "asl-signs" / name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / "asl-signs" / name).write_bytes(data)
    (inputs / "asl-signs-kit-wheel").mkdir()
    (inputs / "asl-signs-kit-wheel" / plan.kit_wheel.name).write_bytes(plan.kit_wheel.data)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(folder / "train.py"), "--input", str(inputs), "--output", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((out / "kit-manifest.json").read_text())
    assert manifest["kind"] == "full" and manifest["folds_done"] == [1]
    assert {"run/full1/model.weights.h5", "run/full1/metrics.json"} <= set(manifest["files"])
    metrics = json.loads((out / "run" / "full1" / "metrics.json").read_text())
    assert metrics["seed"] == base.train.seed + 1 and metrics["epochs"] == 1
    assert not (out / "run" / "full0" / "metrics.json").exists()  # the other seed is another kernel's


def test_a_manifest_naming_files_outside_the_run_is_refused():
    """A kernel output that names ../ or absolute paths never reaches the disk."""
    for name in ("run/../../etc/passwd", "/etc/passwd", "other/fold0/x"):
        with pytest.raises(kaggle_api.KitError, match="outside its run folder"):
            kaggle_output.wanted_files({"folds_done": [0], "files": {name: {"size": 1, "sha256": "0"}}}, [0])


@pytest.mark.parametrize("args, message", [
    (["--accelerator", "p100"], "--accelerator 'p100' is not known; use t4 (T4 x2) or tpu (TPU v5e-8)"),
    (["--parallel", "3"], "--parallel 3: Kaggle runs 1 to 2 t4 sessions at once"),
    (["--accelerator", "tpu", "--set", "train.batch_size=12"], "--accelerator tpu: train.batch_size=12 (the global "
     "batch) does not split evenly over 8 replicas: use --set train.batch_size=16"),
    (["--fold", "7"], "--fold 7 is out of range: with --folds 3 use 0..2"),
    (["--backend", "torch"], "--backend 'torch' is not known; use tensorflow or jax"),
])
def test_bad_options_fail_before_anything_is_sent(stub, tmp_path, args, message):
    result = start(tmp_path / "run", *args)
    assert result.exit_code == 1 and result.output.splitlines()[-1] == f"Error: {message}"
    assert stub.count == 0


def test_folds_inside_a_running_session_are_estimated_from_the_runs_pace(tmp_path):
    """Rule: Kaggle hands over a running session's output only at its end, so what it finished is estimated from
    the pace of this run's folds that came back (metrics.json seconds), and said to exist only in that session."""
    from kit.kaggle.train import only_in_session

    (tmp_path / "fold0").mkdir()
    (tmp_path / "fold0" / "metrics.json").write_text(json.dumps({"val_accuracy": 0.5, "seconds": 3600}))
    group = {"folds": [1, 2, 3], "version": 1, "status": "running", "pushed_at": time.time() - 2.5 * 3600}
    assert only_in_session(tmp_path, {"kind": "fold"}, group) == (
        "folds [1, 2, 3] not back yet: any it finished exist only inside the running session until it ends (at this "
        "run's pace (1 h 00 min a fold) about 2 of them are finished); deleting the kernel loses them")
    assert only_in_session(tmp_path, {"kind": "fold"}, {**group, "status": "queued"}) is None
    assert only_in_session(tmp_path, {"kind": "fold"}, {**group, "folds": [0]}) is None
