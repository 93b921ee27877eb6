"""The exported ensemble is what Kaggle runs: it must load in the TFLite runtime and keep the contract."""

from __future__ import annotations

import json
import zipfile

import numpy as np

from kit.contract import tflite
from kit.contract.gates import edge_cases
from tests.runs import fake_run


def test_export_writes_model_zip_and_report(exported):
    """submission.zip holds exactly model.tflite, byte-identical to the written model.tflite."""
    model = (exported.out_dir / "model.tflite").read_bytes()
    with zipfile.ZipFile(exported.submission) as zf:
        assert zf.namelist() == ["model.tflite"]
        assert zf.read("model.tflite") == model
    assert (exported.out_dir / "export.json").is_file()
    assert len(exported.models) == 3


def test_exported_model_keeps_contract_and_stays_finite(exported):
    """serving_default: inputs float32 [None,543,3] -> outputs [250], a finite distribution for any length."""
    interp = tflite.interpreter(tflite.read_model(exported.submission))
    assert tflite.contract_problems(interp) == []
    predict = tflite.contract_runner(interp)
    for name, frames in edge_cases().items():
        out = predict(frames)
        assert out.shape == (250,), name
        assert np.all(np.isfinite(out)), name
        assert abs(out.sum() - 1) < 1e-4, name


def test_predict_answers_on_the_real_files_with_frames_without_a_face(exported, real_samples):
    """kit predict on the three real files whose face is missing in some frames: read as data, a finite
    distribution over the 250 signs, no error."""
    from kit.contract.predict import predict

    for sample in ("30680/2113802134", "27610/4023682555", "49445/1603631219"):
        answer = predict(exported.submission, real_samples / "train_landmark_files" / f"{sample}.parquet")
        assert answer.frames in (6, 7) and len(answer.top) == 5
        assert all(np.isfinite(p) for _, _, p in answer.top), sample


def test_exported_graph_has_only_builtin_ops(exported):
    """No Flex or custom op, and no variable ops left behind (those read as NaN in the interpreter)."""
    ops = tflite.op_names(tflite.interpreter(tflite.read_model(exported.submission)))
    assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "VAR_HANDLE", "READ_VARIABLE")]


def test_two_architectures_from_two_runs_ensemble_and_pass_every_gate(tmp_path):
    """--models mixes a conv_transformer run and a llama fold: one graph, one preprocessing, every gate ok, the
    latency judged on plain kernels (as the scorer's runtime runs a changing length)."""
    from typer.testing import CliRunner

    from kit.cli import app

    conv = fake_run(tmp_path / "conv", model_names=("conv_transformer_tiny",))
    llama = fake_run(tmp_path / "llama", model_names=("llama_tiny", "llama_tiny"))
    result = CliRunner().invoke(app, ["export", "--models", str(conv), "--models", str(llama / "fold1"),
                                      "--out", str(tmp_path / "mix")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "mix" / "export.json").read_text())
    assert report["passed"] and [g["name"] for g in report["gates"]] == [
        "signature", "ops", "size", "finite", "latency", "parity", "vocabulary"]
    assert report["models"] == [str(conv / "fold0"), str(llama / "fold1")]
    assert "FAIL" not in result.output
    assert "room for" in result.output  # the default budget of 100 ms: how many more such members fit
    latency = next(g for g in report["gates"] if g["name"] == "latency")
    assert latency["data"]["judged"] == "builtin" and "with plain kernels" in latency["detail"]


def test_models_with_different_feature_options_share_one_graph(tmp_path):
    """An mlp fold with every feature option beside a plain llama fold: each gets its own preprocessing inside
    the one graph, and the TFLite output still matches Keras (the parity gate)."""
    from typer.testing import CliRunner

    from kit.cli import app

    options = dict(dominant_hand=True, shoulder_unit=True, distances=True, angles=True, motion=True, trim_idle=True)
    mlp = fake_run(tmp_path / "mlp", model_names=("mlp",), **options)
    llama = fake_run(tmp_path / "llama", model_names=("llama_tiny",))
    result = CliRunner().invoke(app, ["export", "--models", str(mlp), "--models", str(llama),
                                      "--out", str(tmp_path / "mix")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "mix" / "export.json").read_text())
    assert report["passed"], report


def test_failed_gate_refuses_the_zip_unless_forced(tmp_path):
    """A model over the size budget stops the export with one line naming the gate; --force writes the zip."""
    from typer.testing import CliRunner

    from kit.cli import app

    run = fake_run(tmp_path / "run", model_names=("llama_tiny",))
    result = CliRunner().invoke(app, ["export", str(run), "--max-mb", "0.1"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: export gate 'size' failed: ")
    assert not (run / "export" / "submission.zip").exists()
    assert not json.loads((run / "export" / "export.json").read_text())["passed"]
    forced = CliRunner().invoke(app, ["export", str(run), "--max-mb", "0.1", "--force"])
    assert forced.exit_code == 0 and "--force: wrote submission.zip although a gate failed" in forced.output
    assert (run / "export" / "submission.zip").is_file()


def test_ensemble_over_the_latency_budget_is_refused_in_one_line(tmp_path):
    """kit export --budget-ms B: an ensemble whose measured mean (times the safety factor) breaks B is refused
    with one line naming the latency gate and the budget, and no submission.zip is written."""
    from typer.testing import CliRunner

    from kit.cli import app

    run = fake_run(tmp_path / "run", model_names=("llama_tiny",))
    result = CliRunner().invoke(app, ["export", str(run), "--budget-ms", "0.001"])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: export gate 'latency' failed: ") and "breaks the budget of 0.001 ms" in last
    assert not (run / "export" / "submission.zip").exists()
