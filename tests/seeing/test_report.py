"""`kit report`: one self-contained HTML page per run, with curves, per-signer accuracy, confusions and gates."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from kit.cli import app
from kit.training.cv import summarize
from kit.contract.gates import Gate
from kit.data.landmarks import sign_names
from kit.seeing.report import REPORT, report_or_warn, write_report

runner = CliRunner()
EPOCHS = 4


def fake_results(run_dir: Path, n_folds: int = 2, exported: bool = True) -> Path:
    """What training and export leave in a run, without training: history.csv, metrics.json and oof.npz per
    fold, cv.json and report.md from kit.training.cv, and an export/export.json with size, latency and parity gates."""
    rng = np.random.default_rng(0)
    for k in range(n_folds):
        fold = run_dir / f"fold{k}"
        fold.mkdir(parents=True)
        rows = ["epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"]
        rows += [f"{e},{0.2 + 0.1 * e},{1e-3 / (e + 1)},{3 - 0.5 * e},{0.1 + 0.08 * e},{3.2 - 0.4 * e}"
                 for e in range(EPOCHS)]
        (fold / "history.csv").write_text("\n".join(rows) + "\n")
        (fold / "metrics.json").write_text(json.dumps({"fold": k, "val_accuracy": 0.3, "best_epoch": EPOCHS}))
        labels = rng.integers(0, 5, size=20)
        probs = rng.dirichlet(np.ones(250), size=20).astype(np.float32)
        probs[np.arange(10), labels[:10]] += 1  # half right, half wrong
        np.savez(fold / "oof.npz", sequence_ids=np.arange(20) + 100 * k, participant_ids=np.full(20, 1000 + k),
                 labels=labels, probs=probs / probs.sum(-1, keepdims=True))
    summarize(run_dir)
    if exported:
        gates = [Gate("size", True, "1.20 MB of 40 MB", {"size_mb": 1.2, "limit_mb": 40.0}),
                 Gate("latency", True, "mean 1.00 ms", {"xnnpack": {"mean_ms": 1.0, "p95_ms": 2.0},
                                                         "builtin": {"mean_ms": 1.5, "p95_ms": 2.5}, "limit_ms": 100.0}),
                 Gate("parity", False, "max |tflite - keras| = 3.0e-03 <&>", {"max_abs_diff": 3e-3, "tolerance": 1e-4})]
        (run_dir / "export").mkdir()
        (run_dir / "export" / "export.json").write_text(json.dumps({
            "models": ["fold0", "fold1"], "fp16": False, "size_bytes": 1_200_000, "forced": False, "passed": False,
            "gates": [g.to_dict() for g in gates]}))
    return run_dir


class Page(HTMLParser):
    """Every tag with its attributes, and the text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def decoded_images(page: Page) -> list[Image.Image]:
    images = []
    for tag, attrs in page.tags:
        if tag == "img":
            prefix = "data:image/png;base64,"
            assert attrs["src"].startswith(prefix)
            image = Image.open(io.BytesIO(base64.b64decode(attrs["src"][len(prefix):], validate=True)))
            image.load()
            images.append(image)
    return images


def test_cli_writes_one_self_contained_page(tmp_path):
    """`kit report RUN` writes RUN/report.html: a curve image per fold and one per-participant plot, all PNG
    data URIs that decode; the confused signs and the size, latency and parity gates; no external resource."""
    run = fake_results(tmp_path / "run")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run / REPORT)
    html = (run / REPORT).read_text()
    page = Page(html)
    images = decoded_images(page)
    assert len(images) == 2 + 1 and all(im.format == "PNG" and im.size[0] > 100 for im in images)
    assert not [t for t, a in page.tags if t in ("script", "link", "iframe")]
    assert all(v.startswith("data:") for _, a in page.tags for k, v in a.items() if k in ("src", "href"))
    text = " ".join(page.text)
    cv = json.loads((run / "cv.json").read_text())
    pair = cv["confused_pairs"][0]
    assert pair["true"] in sign_names() and pair["true"] in text and pair["predicted"] in text
    assert f"{cv['oof_accuracy']:.4f}" in text
    for gate in ("size", "latency", "parity"):
        assert gate in text
    assert "FAIL" in text and "<&>" in text  # escaped in the HTML, restored by the parser


def test_partial_run_reports_what_it_has(tmp_path):
    """A run not yet exported (and without cv.json) still gets its curves and says what is missing."""
    run = fake_results(tmp_path / "run", n_folds=1, exported=False)
    (run / "cv.json").unlink()
    page = Page(write_report(run).read_text())
    assert len(decoded_images(page)) == 1
    text = " ".join(page.text)
    assert "Not exported yet" in text and "No cv.json yet" in text


def test_nothing_to_report_is_one_line_error_and_the_training_hook_only_warns(tmp_path, capsys):
    """An empty folder is an `Error:` line from the CLI; the hook kit train and kit demo call never raises; a damaged
    cv.json is a warning line naming the fix, and the rest of the page is written."""
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "run kit train first" in result.output
    run = fake_results(tmp_path / "run", n_folds=1, exported=False)
    (run / "cv.json").write_text("{not json")  # a damaged file: its line, and the rest of the page
    assert report_or_warn(run) == run / REPORT
    assert (f"warning: {run / 'cv.json'}: damaged (cut short or not JSON: Expecting property name enclosed in double "
            f"quotes, line 1): kit cv {run} writes it again from the folds") in capsys.readouterr().err
    assert "Training curves" in (run / REPORT).read_text()
    (run / REPORT).unlink()
    (run / REPORT).mkdir()  # the page cannot be written: a warning, never an error
    assert report_or_warn(run) is None
    assert "warning: could not write the HTML report" in capsys.readouterr().err
    (run / REPORT).rmdir()
    assert report_or_warn(run) == run / REPORT
