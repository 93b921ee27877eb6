"""One writer per folder (kit/runlock.py): a second writer is refused naming the holder, a killed holder's lock is
taken over, the same process may take it again, and readers see who writes. Holders here are real processes that
take the lock and sleep; the commands themselves are run against each other in tests/training/test_one_writer.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.errors import KitError
from kit.runlock import LOCK, holder, writing

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from kit.runlock import writing
with writing(sys.argv[1], sys.argv[2], "run"):
    print("held", flush=True)
    time.sleep(120)
"""


def hold(folder: Path, command: str = "kit train") -> subprocess.Popen:
    """A process holding `folder`'s lock as `command` (it sleeps until killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), command], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_touches_nothing(tmp_path):
    run = tmp_path / "run"
    proc = hold(run)
    try:
        (run / "history.csv").write_text("epoch\n")
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        with pytest.raises(KitError) as refused:
            with writing(run, "kit train --resume", "run"):
                raise AssertionError("a second writer got in")
        message = str(refused.value)
        assert message.startswith(f"{run}: kit train (PID {proc.pid}, started ")
        assert message.endswith(f"is writing this run: wait for it to finish, or stop it (kill {proc.pid})")
        assert "\n" not in message
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before, "the refused writer touched nothing"
        found = holder(run)  # a reader sees who writes, without taking the lock
        assert found is not None and found.pid == proc.pid and found.command == "kit train"
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_never_locks_the_folder_for_ever(tmp_path, capsys):
    """kill -9 leaves the holder's record in .lock but the OS drops its flock: the next writer takes the folder
    over and says so; a reader no longer reports the dead process."""
    run = tmp_path / "run"
    proc = hold(run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run / LOCK).read_text())["pid"] == proc.pid, "the dead holder's record stays"
    assert holder(run) is None
    with writing(run, "kit train --resume", "run"):
        assert json.loads((run / LOCK).read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"kit train (PID {proc.pid}" in err and "did not finish" in err and "taking this run over" in err
    assert (run / LOCK).read_text() == "", "a clean end leaves no record to take over"


def test_the_same_process_takes_its_own_lock_again(tmp_path):
    """kit train --sweep -> kit train -> kit cv: nested holds of one folder by one process never deadlock, and the
    lock is given up with the outermost."""
    run = tmp_path / "run"
    with writing(run, "kit train --sweep", "run"):
        with writing(run, "kit train", "run"):
            with writing(run, "kit cv", "run"):
                (run / "cv.json").write_text("{}")
        assert json.loads((run / LOCK).read_text())["command"] == "kit train --sweep"
    assert (run / LOCK).read_text() == ""
    proc = hold(run)  # given up: another process takes it
    proc.kill()
    proc.wait()


def test_a_folder_created_for_nothing_is_removed(tmp_path):
    """A command refused on its options after taking the lock leaves no empty run folder behind."""
    run = tmp_path / "runs" / "new"
    with pytest.raises(KitError):
        with writing(run, "kit train", "run"):
            raise KitError("bad option")
    assert not run.exists()


def test_taking_the_lock_costs_well_under_a_millisecond(tmp_path):
    """The lock is an open, a flock and a small write: timed here so a slow one shows (the report measured it)."""
    run = tmp_path / "run"
    run.mkdir()
    start = time.perf_counter()
    for _ in range(200):
        with writing(run, "kit cv", "run"):
            pass
    assert (time.perf_counter() - start) / 200 < 0.005
