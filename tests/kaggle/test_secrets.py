"""The Kaggle key never leaves the credentials file: not in output, errors, logs, kernels/, the uploaded dataset,
the kernel's output, submission.zip or any file the kit or the client writes.

The kit runs as a user runs it, in subprocesses, with the key in ~/.kaggle/kaggle.json, against the Kaggle stub.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from kit.data.synth import synthesize
from tests.kaggle_stub import KaggleStub, read_competition
from tests.kaggle.test_submit import build_tflite, make_run

ROOT = Path(__file__).resolve().parents[2]
KEY = "kitSECRETkey4f9c2b7e1a0d8c3b"
WRONG_KEY = "kitWRONGkey77d1e0c9b8a7f6e5"
USER = "kit-tester"


def home_with(folder: Path, key: str) -> Path:
    """A home folder whose ~/.kaggle/kaggle.json holds `key`, as Kaggle's "Create New Token" download does."""
    (folder / ".kaggle").mkdir(parents=True)
    path = folder / ".kaggle" / "kaggle.json"
    path.write_text(json.dumps({"username": USER, "key": key}))
    path.chmod(0o600)
    return folder


def kit(home: Path, stub: KaggleStub, tmp: Path, *args: str) -> str:
    """Run `kit ARGS` as a user would; returns stdout and stderr together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(stub.env(), HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "kit.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    return f"$ kit {' '.join(args)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"


def contents(path: Path) -> list[bytes]:
    """A file's bytes, and each member's bytes if it is a zip (a deflated secret would not show in the raw file)."""
    data = [path.read_bytes()]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            data += [zf.read(name) for name in zf.namelist()]
    return data


def test_the_key_appears_nowhere(tmp_path):
    """Fetch, submit (a full round trip), a dry run and three failures; then every byte the kit shows or writes,
    and everything Kaggle receives apart from the Authorization header, is searched for the key."""
    synthesize(tmp_path / "synth", n_signs=2, n_participants=2, per_sign=1, seed=2)
    files = read_competition(tmp_path / "synth")
    participant = next(p.split("/")[1] for p in files if p.startswith("train_landmark_files/"))
    run = make_run(tmp_path / "run", build_tflite(tmp_path / "model" / "model.tflite"))
    home, wrong_home, scratch = home_with(tmp_path / "home", KEY), home_with(tmp_path / "wrong", WRONG_KEY), tmp_path
    outputs = []
    with KaggleStub(tmp_path / "kaggle", files, username=USER, key=KEY) as stub:
        outputs.append(kit(home, stub, scratch, "fetch", "--data", str(tmp_path / "d1"), "--participants", participant))
        outputs.append(kit(home, stub, scratch, "submit", str(run), "--dry-run"))
        outputs.append(kit(home, stub, scratch, "submit", str(run), "-m", "secret scan", "--poll", "0.05"))
        outputs.append(kit(wrong_home, stub, scratch, "fetch", "--data", str(tmp_path / "d2"), "--participants", "1"))
        stub.fail_next(400, rpc="DownloadDataFile", message=f"bad request signed with {KEY}")  # a server echoing it
        outputs.append(kit(home, stub, scratch, "fetch", "--data", str(tmp_path / "d3"), "--participants", "1"))
        stub.kernel_error = f"Kernel died; environment had KAGGLE_KEY={KEY}?"  # a log holding it, shown on error
        (run / "export" / "submit_state.json").unlink()
        outputs.append(kit(home, stub, scratch, "submit", str(run), "--poll", "0.05"))
        received = [r.body for r in stub.requests if r.body] + [b["data"] for b in stub.blobs.values()]
        received += [v["log"] for k in stub.kernels.values() for v in k.versions[:1]]  # v2's log is the planted one
        received += [data for k in stub.kernels.values() for v in k.versions for data in v["output"].values()]
    text = "\n".join(outputs)
    assert "public score: 0.7312" in text and "(HTTP 401)" in text, text
    assert "bad request signed with ***" in text and "KAGGLE_KEY=***" in text, text

    forms = [s.encode() for s in (KEY, WRONG_KEY, base64.b64encode(f"{USER}:{KEY}".encode()).decode())]
    assert not [f for f in forms if f in text.encode()], text
    keyfiles = {home / ".kaggle" / "kaggle.json", wrong_home / ".kaggle" / "kaggle.json"}
    written = [p for p in list(tmp_path.rglob("*")) + list((ROOT / "kernels").rglob("*"))
               if p.is_file() and p not in keyfiles]
    assert any(p.name == "submission.zip" for p in written) and any(p.name == "submit_state.json" for p in written)
    leaks = [str(p) for p in written for data in contents(p) for f in forms if f in data]
    assert not leaks
    blobs = [json.dumps(x).encode() if not isinstance(x, bytes) else x for x in received]
    assert not [f for f in forms for b in blobs if f in b]


def test_kaggle_training_keeps_the_key_out_of_everything(tmp_path):
    """kit kaggle train (dry run, a failed kernel whose log echoes the key, a finished round trip), status and
    cancel, as a user runs them: the key is in no output, no rendered kernel or dataset, no state file, no pushed
    kernel text and no downloaded file."""
    from tests.kaggle.test_train import TINY, fake_kernel

    synthesize(tmp_path / "synth", n_signs=2, n_participants=2, per_sign=1, seed=2)
    files = read_competition(tmp_path / "synth")
    home, run = home_with(tmp_path / "home", KEY), tmp_path / "runs" / "secret"
    train = ["kaggle", "train", "--out", str(run), "--folds", "2", *TINY, "--poll", "0.05"]
    outputs = []
    with KaggleStub(tmp_path / "kaggle", files, username=USER, key=KEY) as stub:
        stub.kernel_runner = fake_kernel
        outputs.append(kit(home, stub, tmp_path, *train, "--dry-run"))
        stub.kernel_error = f"Kernel died; environment had KAGGLE_KEY={KEY}?"
        outputs.append(kit(home, stub, tmp_path, *train))
        outputs.append(kit(home, stub, tmp_path, *train))
        outputs.append(kit(home, stub, tmp_path, "kaggle", "status", str(run)))
        outputs.append(kit(home, stub, tmp_path, "kaggle", "cancel", str(run)))
        pushed = [r.body for r in stub.requests if r.body] + [b["data"] for b in stub.blobs.values()]
    text = "\n".join(outputs)
    assert "KAGGLE_KEY=***" in text and "cross-validation on unseen signers" in text, text
    forms = [s.encode() for s in (KEY, base64.b64encode(f"{USER}:{KEY}".encode()).decode())]
    assert not [f for f in forms if f in text.encode()], text
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != home / ".kaggle" / "kaggle.json"]
    assert any(p.name == "train.py" for p in written) and any(p.name == "state.json" for p in written)
    assert not [str(p) for p in written for data in contents(p) for f in forms if f in data]
    blobs = [json.dumps(x).encode() if not isinstance(x, bytes) else x for x in pushed]
    assert not [f for f in forms for b in blobs if f in b]
