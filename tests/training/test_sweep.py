"""`kit train --sweep`: a grid of runs under one parent folder, each named by what it changes, resumable, ending
with the `kit runs` table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.config import Config
from kit.errors import KitError
from kit.training.sweep import parse_axes, plan, point_name, split_values

runner = CliRunner()


def test_values_split_on_top_level_commas_only():
    """Commas split values, except inside JSON brackets, braces and quoted strings."""
    assert split_values("0,0.5") == ["0", "0.5"]
    assert split_values('{"dim":64,"depth":2},{"dim":32}') == ['{"dim":64,"depth":2}', '{"dim":32}']
    assert split_values('"a,b",mlp,[1,2]') == ['"a,b"', "mlp", "[1,2]"]


def test_grid_is_every_combination_named_by_what_it_changes():
    """Two axes of two values are four runs, first axis slowest; a folder name holds each key=value as --set
    reads it, and nothing a file name should not."""
    points = plan(Config(), parse_axes(["train.mixup_alpha=0,0.50", 'model.name="mlp",llama_small']))
    assert [name for name, _ in points] == ["train.mixup_alpha=0,model.name=mlp",
                                            "train.mixup_alpha=0,model.name=llama_small",
                                            "train.mixup_alpha=0.5,model.name=mlp",
                                            "train.mixup_alpha=0.5,model.name=llama_small"]
    assert points[2][1].train.mixup_alpha == 0.5 and points[2][1].model.name == "mlp"
    assert point_name([("model.overrides", '{"dim": 64}')]) == "model.overrides=_dim_64_"
    assert "/" not in point_name([("model.name", '"a/../b"')])


@pytest.mark.parametrize("items,message", [
    (["train.mixup_alpha"], "must look like section.key=value1,value2"),
    (["train.mixup_alpha=0,,1"], "must look like section.key=value1,value2"),
    (["train.seed=1,1"], "repeats a value"),
    (["train.seed=1", "train.seed=2"], "is given twice"),
    (["train.nope=1,2"], "--sweep train.nope=1: unknown key 'train.nope'"),
    (["train.epochs=3,x"], "--sweep train.epochs=x: train.epochs must be int"),
])
def test_bad_sweeps_are_refused_before_training(items, message):
    """Every combination's config is checked first: a malformed, repeated or unknown setting is one error."""
    with pytest.raises(KitError, match=message.replace("[", r"\[").replace(".", r"\.")):
        plan(Config(), parse_axes(items))


def test_sweep_errors_through_the_cli(tmp_path):
    """--sweep with --full or --resume, or an unknown key, exits 1 with one `Error:` line, nothing written."""
    for args, message in ([["--full", "--epochs", "2"], "--sweep trains folds"],
                          [["--resume", str(tmp_path)], "drop --resume"],
                          [[], "unknown key 'train.nope'"]):
        sweep = "train.nope=1,2" if not args else "train.seed=1,2"
        result = runner.invoke(app, ["train", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "sweep"),
                                     "--sweep", sweep, *args])
        assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output, args
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_sweep_trains_each_point_resumes_and_prints_the_table(tiny_cache, tmp_path):
    """Two points train as two runs and the table follows; run again, a finished point is skipped and one whose
    fold lost its final metrics is trained again; a changed base config is refused before training."""
    parent = tmp_path / "sweep"
    args = ["train", "--cache", str(tiny_cache), "--out", str(parent), "--folds", "2", "--fold", "0",
            "--epochs", "1", "--model", "llama_tiny", "--set", "preprocess.max_len=16",
            "--sweep", "train.mixup_alpha=0,0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sweep " + str(parent) + ": 2 runs (2 trained, 0 already finished)" in result.output
    low, high = parent / "train.mixup_alpha=0", parent / "train.mixup_alpha=0.5"
    assert json.loads((high / "config.json").read_text())["train"]["mixup_alpha"] == 0.5
    rows = [line for line in result.output.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert len(rows) == 2 and all("train.mixup_alpha=" in row and "1/2" in row for row in rows)

    (high / "fold0" / "metrics.json").unlink()  # as if killed before its final metrics
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 runs (1 trained, 1 already finished)" in result.output
    assert (high / "fold0" / "metrics.json").is_file()

    result = runner.invoke(app, [*args, "--set", "train.seed=3"])
    assert result.exit_code == 1 and f"{low} was trained with another config" in result.output
