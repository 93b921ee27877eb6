"""A newcomer's first hour (issue 22), as the user meets it: each command's exit code and the one line that matters.
All share one tiny trained and exported run (conftest's trained_run)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from kit.cli import app

runner = CliRunner()


def kit(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def fold_signers(run: Path) -> dict[int, set[int]]:
    """fold -> the signers it holds out, from the run's folds.csv."""
    out: dict[int, set[int]] = {}
    with (run / "folds.csv").open() as f:
        for row in csv.DictReader(f):
            out.setdefault(int(row["fold"]), set()).add(int(row["participant_id"]))
    return out


def test_export_prints_the_runs_cv_and_which_folds_top_left_out(trained_run):
    """kit export says what the export is worth (CV, folds finished of planned, models kept) and which folds --top
    left out, and why."""
    run, _, output = trained_run
    lines = output.splitlines()
    assert lines[-1].startswith(f"run {run}: CV ") and lines[-1].endswith(
        " over 2 of 2 folds (chance 0.250); its export keeps 1 model")
    left = [line for line in lines if line.startswith("  left out ")]
    assert len(left) == 1 and "on its unseen signers, not among the 1 best fold --top 1 keeps" in left[0]
    assert "ensemble of 1 model:" in lines


def test_export_elsewhere_counts_the_models_it_wrote(trained_run, tmp_path):
    """kit export RUN --out DIR ends with what DIR keeps, not what RUN/export keeps (issue 27: it said "its export
    keeps 1 model" of a 2-model export)."""
    run, _, _ = trained_run
    result = kit("export", run, "--top", "2", "--out", tmp_path / "two")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith(f"; the export in {tmp_path / 'two'} keeps 2 models")


def test_a_run_folder_is_a_model_wherever_a_model_is(trained_run, tmp_path):
    """evaluate, predict and check take a run folder as its exported submission.zip; a run without an export says
    so and names kit export."""
    run, data, _ = trained_run
    parquet = next((data / "train_landmark_files").rglob("*.parquet"))
    assert kit("check", run).exit_code == 0
    predicted = kit("predict", run, parquet)
    assert predicted.exit_code == 0, predicted.output
    evaluated = kit("evaluate", run, "--data", data)
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.stdout.startswith(f"{run}: accuracy ")
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("export"))
    for command in (["check", bare], ["evaluate", bare, "--data", data], ["predict", bare, parquet]):
        result = kit(*command)
        assert result.exit_code == 1
        assert result.output == f"Error: {bare}: a folder with no export/submission.zip: run kit export {bare} first\n"


def test_evaluate_warns_when_scored_signers_trained_a_member(trained_run):
    """Leakage is said out loud: scoring signers that a member trained on ends with a warning naming how many;
    scoring only the signers the exported fold held out gives no warning."""
    run, data, _ = trained_run
    import json

    member = Path(json.loads((run / "export" / "export.json").read_text())["models"][0])
    held_out = fold_signers(run)[int(member.name[4:])]
    result = kit("evaluate", run, "--data", data)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith(
        f"warning: {4 - len(held_out)} of 4 scored signers trained a member of this model (")
    clean = kit("evaluate", run, "--data", data, "--participants", ",".join(map(str, sorted(held_out))))
    assert clean.exit_code == 0 and "warning" not in clean.output


def test_cv_over_some_folds_says_k_of_n(trained_run, tmp_path):
    """A CV line over some of the run's folds says "k of n folds", so a partial CV never reads as a whole one."""
    run, _, _ = trained_run
    partial = tmp_path / "partial"
    shutil.copytree(run, partial, ignore=shutil.ignore_patterns("fold1", "export"))
    result = kit("cv", partial)
    assert result.exit_code == 0
    assert result.stdout.startswith("cross-validation on unseen signers (1 of 2 folds): ")
    whole = kit("cv", run)
    assert whole.stdout.startswith("cross-validation on unseen signers: ")


def every_command() -> list[list[str]]:
    """The path of every command, e.g. ["kaggle", "train"]."""
    import typer.main

    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        paths += [[name, s] for s in sub] if sub else [[name]]
    return paths


def test_help_shows_flags_as_flags_and_arguments_by_name():
    """One vocabulary in --help: a flag shows no <bool>, a usage line names its arguments in capitals (RUN_DIR),
    never {run_dir}; the old spellings of renamed options stay out of --help."""
    for path in every_command():
        text = kit(*path, "--help").output
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "<bool>" not in text and "{" not in usage, (path, usage)
    assert " cv [OPTIONS] RUN_DIR" in kit("cv", "--help").output
    assert "--dest" not in kit("fetch", "--help").output and "--top" not in kit("predict", "--help").output


def test_help_prose_wraps_at_the_terminal_not_at_the_docstring(monkeypatch):
    """In an 80-column terminal each paragraph of a command's help fills its lines: the docstring's own line breaks
    do not cut it into ragged short lines (issue 27: kit export --help did). Example lines keep their own lines."""
    monkeypatch.setenv("COLUMNS", "80")
    for path in every_command():
        text = re.sub(r"\x1b\[[0-9;]*m", "", kit(*path, "--help").output)  # colours: typer forces them on GitHub
        prose = text.split("Usage:", 1)[1].split("╭", 1)[0].splitlines()[1:]
        paragraphs = "\n".join(line.strip() for line in prose).strip().split("\n\n")
        for paragraph in paragraphs:
            if paragraph.startswith("Example"):
                continue
            lines = paragraph.splitlines()
            short = [line for line, after in zip(lines, lines[1:]) if len(line) + len(after.split()[0]) < 76]
            assert not short, (path, short)


def test_a_data_folder_is_data_everywhere_and_old_spellings_still_run(tmp_path, monkeypatch):
    """--data names a data folder in synth, fetch and stats; synth counts signers with --signers (--participants is
    a list of signer ids); the old spellings (synth --out/--participants, fetch --dest, stats DATA) still run,
    hidden, and giving both spellings is one error line."""
    monkeypatch.chdir(tmp_path)
    new = kit("synth", "--data", "new", "--signs", "2", "--signers", "2", "--per-sign", "1")
    old = kit("synth", "--out", "old", "--signs", "2", "--participants", "2", "--per-sign", "1")
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert (Path("new") / "train.csv").read_text() == (Path("old") / "train.csv").read_text()
    both = kit("synth", "--data", "a", "--out", "b")
    assert both.exit_code == 1 and both.output == "Error: --out is the old spelling of --data: give --data only\n"
    for args in (["stats", "--data", "new"], ["stats", "new"]):
        result = kit(*args)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "stats" / "signs.png").is_file() and not (tmp_path / "new" / "stats").exists()
    assert "--participants" not in kit("synth", "--help").output
    assert "--data" in kit("fetch", "--help").output


def fresh(*args: str) -> tuple[int, str, list[str]]:
    """Run `kit ARGS` in a new Python: (exit code, output, the heavy libraries it imported)."""
    import json
    import subprocess
    import sys

    script = ("import json, sys; from typer.testing import CliRunner; from kit.cli import app; "
              f"r = CliRunner().invoke(app, {list(args)!r}); "
              "print(json.dumps([r.exit_code, r.output, sorted({'tensorflow', 'keras', 'jax'} & set(sys.modules))]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    code, output, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    return code, output, heavy


def test_fast_right_errors(tmp_path):
    """Fast, right errors: an unknown --set key (or model name) and kit models need no TensorFlow; a missing run
    folder, a missing landmark file and kit predict without a source each say what is wrong in one line."""
    code, output, heavy = fresh("train", "--cache", str(tmp_path), "--out", str(tmp_path / "r"), "--set",
                                "train.nope=1")
    assert code == 1 and output.startswith("Error: unknown key 'train.nope'; valid: train.epochs") and heavy == []
    code, output, heavy = fresh("train", "--model", "lama_tiny")
    assert code == 1 and output.startswith("Error: unknown model 'lama_tiny'; registered models: ") and heavy == []
    code, output, heavy = fresh("models")
    assert code == 0 and heavy == [] and output.splitlines()[0].startswith("conv_transformer: ")

    missing = tmp_path / "nope"
    export = kit("export", missing)
    assert export.exit_code == 1 and export.output == (
        f"Error: {missing}: no such folder; give a run directory that kit train --out wrote (kit runs lists them)\n")
    show = kit("show", tmp_path / "nope.parquet")
    assert show.exit_code == 1 and show.output.startswith(f"Error: {tmp_path / 'nope.parquet'}: no such file; ")
    predict = kit("predict", tmp_path / "model.tflite")
    assert predict.exit_code == 1 and predict.output == (
        "Error: give a SOURCE (a landmark .parquet, a video, an image or a folder of images) or --webcam N\n")


def test_a_kit_error_anywhere_in_a_command_is_one_line_and_exit_status_1():
    """Every kit command is a KitCommand: a KitError raised anywhere in it (its own checks or the library's) ends
    it with `Error: ...` in one line and exit status 1, never a traceback; the commands need no try of their own."""
    from kit.cli.base import KitTyper
    from kit.errors import KitError

    probe = KitTyper()

    @probe.command()
    def broken() -> None:
        raise KitError("data/x.parquet: truncated; download it again")

    @probe.command()
    def fine() -> None:
        pass

    result = CliRunner().invoke(probe, ["broken"])
    assert result.exit_code == 1 and result.output == "Error: data/x.parquet: truncated; download it again\n"


def test_the_model_table_names_exactly_the_registered_models():
    """kit models and the early model.name check read kit.model_names; it must name exactly the registry's."""
    from kit.model_names import MODELS
    from kit.models import list_models

    assert sorted(MODELS) == list_models()


def test_runs_fits_80_columns_and_a_lone_run_shows_its_changes(trained_run):
    """kit runs in an 80-column terminal: every line fits and the left-out columns are named; a run listed alone
    shows what it changed from its recipe. Piped (no terminal width), rows stay one greppable line each."""
    run, _, _ = trained_run
    narrow = runner.invoke(app, ["runs", str(run)], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "CV accuracy" in lines[0] and "preprocess.max_len=16" in narrow.stdout
    assert "  (left out to fit 80 columns: " in narrow.stdout
    piped = runner.invoke(app, ["runs", str(run)], env={"COLUMNS": ""})
    row = next(line for line in piped.stdout.splitlines() if line.split()[:2] == ["1", run.name])
    assert "preprocess.max_len=16" in row and "train.epochs=1" in row and row.rstrip().endswith("done")


def test_report_shows_settings_signers_and_signs_as_numbers(trained_run):
    """report.html opens with the model and key settings, and gives per-signer and per-sign accuracy as numbers."""
    run, _, _ = trained_run
    assert kit("report", run).exit_code == 0
    page = (run / "report.html").read_text()
    assert page.index("<h2>Model and key settings</h2>") < page.index("<h2>Cross-validation")
    assert "<td>model</td><td>llama_tiny</td>" in page and "<td>preprocess.max_len</td><td>16</td>" in page
    assert "<th>participant</th><th>held-out sequences</th><th>accuracy</th>" in page
    assert "<h3>Accuracy per sign (worst first)</h3>" in page


def test_the_command_a_refusal_names_works(trained_run, tmp_path):
    """No dead ends: kit submit refuses a partial run naming the command that finishes it; that command, run as
    given, trains the missing fold, and the refusal no longer says partial."""
    run, _, _ = trained_run
    partial = tmp_path / "half"
    shutil.copytree(run, partial, ignore=shutil.ignore_patterns("fold1"))
    refused = kit("submit", partial, "--dry-run")
    line = next(line for line in refused.stdout.splitlines() if line.startswith("without --force"))
    assert "partial: 1 of 2 folds finished" in line
    command = line[line.index("(kit train ") + 1:line.index("), or submit")]
    finished = kit(*command.split()[1:])
    assert finished.exit_code == 0, finished.output
    assert (partial / "fold1" / "metrics.json").is_file()
    assert "partial: 1 of 2" not in kit("submit", partial, "--dry-run").stdout
