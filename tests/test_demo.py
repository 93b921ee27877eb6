"""`kit demo`, the README's first command: the whole pipeline on synthetic signers, end to end."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.demo import MARKER, _fresh_folder
from kit.errors import KitError
from kit.contract.evaluate import evaluate

runner = CliRunner()


@pytest.mark.slow
def test_demo_runs_end_to_end_and_its_submission_scores(tmp_path):
    """synth -> prepare -> 3 folds -> export -> evaluate on unseen signers; the zip passes kit evaluate."""
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "accuracy on 2 unseen signers" in result.output and "chance 0.040" in result.output
    run = out / "run"
    assert result.stdout.splitlines()[-1] == (f"next: kit report {run} (curves, signers, signs: {run / 'report.html'}), "
                                              f"kit runs {run} (the run in one row)"), "the demo ends on what to try"
    submission = out / "run" / "export" / "submission.zip"
    assert submission.is_file()
    assert sorted(p.name for p in (out / "run").glob("fold*") if p.is_dir()) == ["fold0", "fold1", "fold2"]
    scored = evaluate(submission, out / "data")
    assert scored.n == 1000 and 0 <= scored.accuracy <= 1


def test_demo_replaces_its_own_folder_and_refuses_others(tmp_path):
    """A re-run replaces a folder kit demo wrote; a folder it did not write is never touched, nor one that another
    kit demo is writing."""
    demo = tmp_path / "demo"
    _fresh_folder(demo)
    (demo / "old.txt").write_text("from the last run")
    _fresh_folder(demo)
    assert not (demo / "old.txt").exists() and (demo / MARKER).is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(KitError, match="not written by kit demo"):
        _fresh_folder(mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    result = runner.invoke(app, ["demo", "--out", str(mine)])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    from tests.test_runlock import hold

    running = hold(demo, "kit demo")  # a demo running in another terminal: a second one deletes nothing
    try:
        (demo / "old.txt").write_text("the running demo's")
        second = runner.invoke(app, ["demo", "--out", str(demo)])
        assert second.exit_code == 1 and second.output.startswith(f"Error: {demo}: kit demo (PID {running.pid}")
        assert (demo / "old.txt").is_file()
    finally:
        running.kill()
        running.wait()
