"""`kit report`: one self-contained HTML page about a run, RUN/report.html, to open anywhere or attach.

It shows the model and key settings (config.json), the training curves of every fold (fold*/history.csv) and full
fit (full*/history.csv), the cross-validation summary with accuracy per participant and per sign (numbers, not only
bars) and the most confused sign pairs (cv.json, written by
kit train / kit cv), the full fits on every signer (not validated) and, once the run is exported, the Kaggle
gates and which exported models were validated on unseen signers (export/export.json). Plots are PNGs embedded
as base64 data URIs; the page loads no file, stylesheet or script from anywhere, so it can be mailed or archived
as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from pathlib import Path

from kit.config import flatten
from kit.errors import KitError
from kit import runfiles
from kit.progress import say
from kit.runlock import holder

REPORT = "report.html"
DPI = 90
_CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f2f2f2}.ok{color:#2a7a2a;font-weight:bold}.fail{color:#b22;font-weight:bold}
img{max-width:100%}.note{color:#666}pre{background:#f7f7f7;padding:.5em;overflow:auto}"""


def judged_latency(gate: dict) -> tuple[str, dict]:
    """The kernels an export's latency gate judged and their timings ({"mean_ms", "p95_ms"}, or {}), from its entry
    in export.json: plain kernels since the gate judges them; XNNPACK in an export.json written before ("judged"
    absent)."""
    timed = gate.get("data", {})
    kernels = timed.get("judged", "xnnpack")
    return ("plain kernels" if kernels == "builtin" else "XNNPACK"), timed.get(kernels, {})


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write RUN/report.html from what the run holds; returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KitError(f"{run_dir}: no such run directory; give the --out folder of kit train")
    histories = {}  # label -> history.csv: folds by number, then full fits by number
    for kind, label in (("fold", "fold "), ("full", "full fit ")):
        found = [p for p in run_dir.glob(f"{kind}*/history.csv") if p.parent.name[4:].isdigit()]
        for path in sorted(found, key=lambda p: int(p.parent.name[4:])):
            histories[f"{label}{path.parent.name[4:]}"] = path
    cv_path, export_path = run_dir / "cv.json", run_dir / "export" / "export.json"
    if not histories and not cv_path.is_file():
        raise KitError(f"{run_dir}: nothing to report (no fold*/history.csv, full*/history.csv or cv.json): "
                       "run kit train first")
    body = [f"<h1>Run {_e(run_dir.name)}</h1>", f"<p class='note'>{_e(str(run_dir.resolve()))}</p>"]
    writer = holder(run_dir)
    if writer:
        say(f"note: {run_dir} is still being written by {writer}: the report shows it as it is now")
        body.append(f"<p class='note'>Still being written by {_e(writer)}: this page shows it as it was at "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')}.</p>")
    body += _settings_section(run_dir / "config.json")
    body += _cv_section(run_dir, cv_path)
    body += _full_section(run_dir)
    body += _curves_section(histories)
    body += _export_section(run_dir, export_path)
    body += _config_section(run_dir / "config.json")
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>kit report: {_e(run_dir.name)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    out = run_dir / REPORT
    runfiles.write_text(out, page)  # whole or not at all: kit train and kit report may both write it
    return out


def report_or_warn(run_dir: str | os.PathLike) -> Path | None:
    """write_report, saying where the page is; any failure is a warning line, so a finished run is never lost."""
    try:
        path = write_report(run_dir)
    except Exception as err:  # a plotting or disk problem must not turn a finished training run into an error
        say(f"warning: could not write the HTML report ({type(err).__name__}: {err}); the run itself is complete, "
            f"try again with kit report {run_dir}")
        return None
    say(f"report: {path}")
    return path


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _table(header: list[str], rows: list[list], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (cells already HTML)."""
    cell = (lambda v: str(v)) if raw else _e
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    lines = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{lines}</table>"


def _img(fig, alt: str) -> str:
    """A matplotlib Figure as an <img> with a PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv as columns of floats (epoch, accuracy, loss, learning_rate?, val_accuracy, val_loss); NaN where
    a value is missing; {} before the first epoch. A damaged one raises kit.runfiles.Damaged, naming the fix."""
    history = runfiles.read_history(path, runfiles.member_fix(Path(path).parent))
    return history if any(history.values()) else {}


def _curves_section(histories: dict[str, Path]) -> list[str]:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out = ["<h2>Training curves</h2>"]
    if not histories:
        return out + ["<p class='note'>No fold*/history.csv in this run.</p>"]
    for label, path in histories.items():
        try:
            history = read_history(path)
        except runfiles.Damaged as err:
            out += _damaged(err)
            continue
        if not history:
            out.append(f"<p class='note'>{_e(label)}: {_e(path)} holds no epoch yet.</p>")
            continue
        epochs = [e + 1 for e in history.get("epoch", range(len(next(iter(history.values())))))]
        panels = [("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy"))]
        if "learning_rate" in history:
            panels.append(("learning rate", ("learning_rate",)))
        fig = Figure(figsize=(3.6 * len(panels), 2.8))
        for i, (title, keys) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            for key in keys:
                if key in history:
                    ax.plot(epochs, history[key], marker="." if len(epochs) < 30 else None,
                            label="held-out signers" if key.startswith("val_") else "training")
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if len(keys) > 1:
                ax.legend(fontsize=7)
        out.append(_img(fig, f"{label} training curves"))
    return out


def _cv_section(run_dir: Path, cv_path: Path) -> list[str]:
    out = ["<h2>Cross-validation on unseen signers</h2>"]
    if not cv_path.is_file() and not list(run_dir.glob("fold*/history.csv")) and list(run_dir.glob("full*")):
        return out + ["<p class='note'>None: this run holds only full fits on every signer, so no signer was held "
                      "out. Their accuracy on unseen signers is estimated by the folds of the run they took "
                      "their recipe from.</p>"]
    if not cv_path.is_file():
        return out + [f"<p class='note'>No cv.json yet: run <code>kit cv {_e(run_dir)}</code> once a fold has "
                      "finished.</p>"]
    try:
        cv = runfiles.read_json(cv_path, f"kit cv {run_dir} writes it again from the folds")
    except runfiles.Damaged as err:
        return out + _damaged(err)
    out.append(f"<p>Out-of-fold accuracy <b>{cv['oof_accuracy']:.4f}</b> over {cv['n_sequences']} sequences "
               f"(chance {cv['chance']:.4f}).</p>")
    folds = []
    for k, acc in sorted(cv.get("fold_accuracy", {}).items(), key=lambda item: int(item[0])):
        metrics = run_dir / f"fold{k}" / "metrics.json"
        try:
            best = runfiles.read_metrics(metrics.parent).get("best_epoch", "-") if metrics.is_file() else "-"
        except runfiles.Damaged as err:
            best = "-"
            out += _damaged(err)
        folds.append([k, f"{acc:.4f}", best])
    out.append(_table(["fold", "accuracy", "best epoch"], folds))
    out += _participant_plot(cv.get("participant_accuracy", {}))
    sequences = cv.get("participant_sequences", {})
    out.append(_table(["participant", "held-out sequences", "accuracy"],
                      [[p, sequences.get(p, "-"), f"{a:.4f}"] for p, a in
                       sorted(cv.get("participant_accuracy", {}).items(), key=lambda item: item[1])]))
    if cv.get("sign_accuracy"):  # cv.json of kit cv since per-sign accuracy
        out.append("<h3>Accuracy per sign (worst first)</h3>")
        out.append(_table(["sign", "accuracy"], [[sign, f"{a:.4f}"] for sign, a in
                                                 sorted(cv["sign_accuracy"].items(), key=lambda item: item[1])]))
    else:
        out.append(f"<p class='note'>No accuracy per sign in this cv.json: <code>kit cv {_e(run_dir)}</code> "
                   "adds it.</p>")
    pairs = cv.get("confused_pairs", [])
    out.append("<h3>Most confused signs</h3>")
    out.append(_table(["true", "predicted", "count"], [[p["true"], p["predicted"], p["count"]] for p in pairs])
               if pairs else "<p class='note'>No mistakes.</p>")
    return out


def _full_section(run_dir: Path) -> list[str]:
    """The full fits on every signer (kit train --full): finished or not, with seed and epochs."""
    rows, damaged = [], []
    for member in sorted((p for p in run_dir.glob("full*") if p.name[4:].isdigit()), key=lambda p: int(p.name[4:])):
        metrics = member / "metrics.json"
        try:
            m = runfiles.read_metrics(member) if metrics.is_file() else None
        except runfiles.Damaged as err:
            m = None
            damaged += _damaged(err)
        if m is not None:
            rows.append([member.name, m.get("seed", "-"), m.get("epochs", "-"), m.get("train_sequences", "-"),
                         m.get("seconds", "-"), "finished"])
        else:
            rows.append([member.name, "-", "-", "-", "-", "not finished (kit train --resume)"])
    if not rows:
        return []
    return ["<h2>Full fits on every signer</h2>",
            "<p class='note'>Trained on every signer for a fixed epoch count, keeping the last epoch: not validated "
            "on unseen signers (no signer was held out). kit export prefers them to the folds.</p>",
            _table(["model", "seed", "epochs", "training sequences", "seconds", "state"], rows)] + damaged


def _participant_plot(accuracy: dict[str, float]) -> list[str]:
    from matplotlib.figure import Figure

    if not accuracy:
        return []
    ranked = sorted(accuracy.items(), key=lambda item: item[1])
    fig = Figure(figsize=(max(5.0, 0.4 * len(ranked) + 1.5), 3.2))
    ax = fig.add_subplot()
    ax.bar([p for p, _ in ranked], [a for _, a in ranked], color="#1f77b4")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy per held-out participant (worst first)", fontsize=9)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    return ["<h3>Accuracy per participant</h3>", _img(fig, "accuracy per participant")]


def _export_section(run_dir: Path, export_path: Path) -> list[str]:
    out = ["<h2>Export gates</h2>"]
    if not export_path.is_file():
        return out + [f"<p class='note'>Not exported yet: <code>kit export {_e(run_dir)}</code> writes "
                      f"{_e(export_path)}.</p>"]
    try:
        info = runfiles.read_json(export_path, f"kit export {run_dir} writes it again")
    except runfiles.Damaged as err:
        return out + _damaged(err)
    gates = info.get("gates", [])
    by_name = {g["name"]: g for g in gates}
    verdict = "<span class='ok'>all gates passed</span>" if info.get("passed") else "<span class='fail'>a gate failed</span>"
    headline = [f"{verdict}; model.tflite {info.get('size_bytes', 0) / 1e6:.2f} MB"
                + (" (float16 weights)" if info.get("fp16") else "")]
    kernels, latency = judged_latency(by_name.get("latency", {}))
    if latency:
        headline.append(f"latency mean {latency['mean_ms']:.2f} ms, p95 {latency['p95_ms']:.2f} ms ({kernels}, "
                        f"as the scorer would run it)")
    parity = by_name.get("parity", {}).get("data", {})
    if parity:
        headline.append(f"parity max |tflite - keras| {parity['max_abs_diff']:.1e}")
    out.append(f"<p>{'; '.join(headline)}.</p>")
    rows = [[_e(g["name"]), "<span class='ok'>ok</span>" if g["ok"] else "<span class='fail'>FAIL</span>",
             _e(g["detail"])] for g in gates]
    out.append(_table(["gate", "result", "detail"], rows, raw=True))
    members = info.get("members")
    if members:  # export.json of kit export since full fits: validated on unseen signers or not, per model
        out.append(_table(["model", "validated on unseen signers", "trained on"],
                          [[m["path"], _validated(m), m["trained_on"]] for m in members]))
    else:
        out.append(f"<p class='note'>models: {_e(', '.join(info.get('models', [])))}</p>")
    return out


def _validated(member: dict) -> str:
    if member["validated"]:
        return f"yes: fold accuracy {member['val_accuracy']:.4f}"
    return "no: full fit" if member["trained_on"] == "every signer" else "no"


KEY_SETTINGS = ("train.epochs", "train.batch_size", "train.optimizer", "train.learning_rate", "train.mixup_alpha",
                "train.ema", "train.precision", "preprocess.max_len")  # what sets one run apart from the next


def _settings_section(config_path: Path) -> list[str]:
    """The model and the key settings at the top of the page (the whole config is at its end)."""
    if not config_path.is_file():
        return []
    try:
        flat = flatten(runfiles.read_json(config_path, "restore it: each fold*/config.json holds the run's config"))
    except runfiles.Damaged as err:
        return _damaged(err)
    rows = [["model", flat.get("model.name", "-")]] + [[k, flat[k]] for k in KEY_SETTINGS if k in flat]
    rows += [[k, v] for k, v in flat.items() if k.startswith("model.") and k not in ("model.name",)]
    return ["<h2>Model and key settings</h2>", _table(["setting", "value"], rows)]


def _config_section(config_path: Path) -> list[str]:
    if not config_path.is_file():
        return []
    return ["<h2>Config</h2>", f"<pre>{_e(config_path.read_bytes().decode(errors='replace'))}</pre>"]


def _damaged(err: Exception) -> list[str]:
    """A damaged file of the run: a warning line, and a note in its section; the rest of the page is kept."""
    say(f"warning: {err}")
    return [f"<p class='fail'>{_e(err)}</p>"]
