"""kit fetch against the Kaggle stub: the real `kaggle` client, a real HTTP server on 127.0.0.1, nothing mocked.

The stub serves a small competition in the real layout (kit synth's signers plus one long sequence, participant
99999, big enough to be cut mid-download); one test serves the real samples (samples/asl-signs).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kit.cli import app
from kit.errors import KitError
from kit.kaggle.fetch import STAGING, STATE, fetch_competition
from tests.environment import wait_for
from tests.kaggle_stub import KaggleStub, long_sequence, read_competition, sign_in, with_sequence

ROOT = Path(__file__).resolve().parents[2]
LONG = 99999  # the participant whose one file is a few MB
LONG_FILE = f"train_landmark_files/{LONG}/7.parquet"
MiB = 1 << 20


@pytest.fixture(scope="module")
def competition(synthetic) -> dict[str, bytes]:
    return with_sequence(read_competition(synthetic(3, 3, 1) / "data"), LONG, 7, long_sequence(), "TV")


def participants_of(files: dict[str, bytes]) -> list[int]:
    return sorted({int(p.split("/")[1]) for p in files if p.startswith("train_landmark_files/")} - {LONG})


@pytest.fixture
def stub(tmp_path, competition, monkeypatch):
    with KaggleStub(tmp_path / "kaggle", competition) as server:
        sign_in(monkeypatch, server, tmp_path / "home")
        yield server


def fetch(dest: Path, *args: str):
    return CliRunner().invoke(app, ["fetch", "--data", str(dest), *args])


def landmark_files(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in (dest / "train_landmark_files").rglob("*.parquet")}


def test_fetch_participants_brings_exactly_their_files(stub, tmp_path):
    """--participants: train.csv, the sign map and those signers' landmark files, byte for byte, nothing else."""
    dest = tmp_path / "data"
    a, b, _ = participants_of(stub.files)
    result = fetch(dest, "--participants", f"{a},{b}")
    assert result.exit_code == 0, result.output
    wanted = {p: d for p, d in stub.files.items() if p.startswith((f"train_landmark_files/{a}/",
                                                                    f"train_landmark_files/{b}/"))}
    assert landmark_files(dest) == wanted
    assert (dest / "train.csv").read_bytes() == stub.files["train.csv"]  # served zipped, unwrapped
    assert (dest / "sign_to_prediction_index_map.json").read_bytes() == stub.files["sign_to_prediction_index_map.json"]
    assert not (dest / STAGING).exists(), "nothing is left half-way"
    assert f"{len(wanted) + 2} new files" in result.stdout and f"Next: kit prepare --data {dest}" in result.stdout
    assert not stub.calls("DownloadDataFiles"), "the 40 GB archive is not touched"
    assert all("Authorization" not in r.headers for r in stub.gets(".parquet")), "the key goes to Kaggle only"


def test_refetch_adds_only_new_files_and_prepare_reads_only_them(stub, tmp_path):
    """A second fetch leaves files in place untouched (no request for them); kit prepare then reads only new ones."""
    from kit.data.prepare import build_cache

    dest, cache = tmp_path / "data", tmp_path / "cache"
    a, b, _ = participants_of(stub.files)
    assert fetch(dest, "--participants", str(a)).exit_code == 0
    first = build_cache(dest, cache, workers=1, participants=[a])
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (dest / "train_landmark_files").rglob("*.parquet")}
    seen = stub.count
    result = fetch(dest, "--participants", f"{a},{b}")
    assert result.exit_code == 0, result.output
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before} == before
    asked = [r.body["fileName"] for r in stub.calls("DownloadDataFile")[len(before) + 2:]]
    assert asked and all(f"/{b}/" in name for name in asked), asked
    assert stub.count - seen == 2 * len(asked)
    second = build_cache(dest, cache, workers=1, participants=[a, b])
    assert (second.read, second.reused) == (len(asked), first.sequences)


def test_connection_dropped_mid_file_resumes_to_identical_bytes(stub, tmp_path):
    """A connection cut half-way is resumed by the client with Range + If-Range (the ETag): byte-identical result."""
    dest = tmp_path / "data"
    stub.drop_file(LONG_FILE.split("/")[-1], after=int(1.5 * MiB))
    result = fetch(dest, "--participants", str(LONG))
    assert result.exit_code == 0, result.output
    assert (dest / LONG_FILE).read_bytes() == stub.files[LONG_FILE]
    first, second = stub.gets(LONG_FILE.split("/")[-1])
    assert (first.status, second.status) == (200, 206)
    assert second.headers["Range"] == f"bytes={MiB}-", "resumed after the whole chunk it had, not from 0"
    assert second.headers["If-Range"] == etag(stub.files[LONG_FILE]), "and only if the file is still the same"


def test_download_failing_verification_is_not_kept(stub, tmp_path):
    """A landmark file that arrives whole but is no complete parquet file: a clear error, nothing left in place,
    and the next fetch downloads it again."""
    dest = tmp_path / "data"
    good = stub.files[LONG_FILE]
    stub.files[LONG_FILE] = good[:-100]  # Kaggle's copy cut short: the size matches, the footer is gone
    result = fetch(dest, "--participants", str(LONG))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (f"Error: {dest / STAGING / LONG_FILE}: not a complete parquet file "
                                              f"({len(good) - 100} bytes): run kit fetch again")
    assert not (dest / LONG_FILE).exists() and not (dest / STAGING / LONG_FILE).exists()
    stub.files[LONG_FILE] = good
    assert fetch(dest, "--participants", str(LONG)).exit_code == 0
    assert (dest / LONG_FILE).read_bytes() == good


def etag(data: bytes) -> str:
    """The validator the stub sends with a file, as Kaggle's storage does."""
    return f'"{hashlib.sha1(data).hexdigest()}"'


def test_killed_fetch_resumes_on_the_next_run(stub, tmp_path):
    """A fetch killed mid-archive leaves a partial; the next run asks only for the rest, then unpacks it all."""
    dest, log = tmp_path / "data", tmp_path / "killed.log"
    stub.stall_file("asl-signs.zip", after=3 * MiB)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "fetch", "--data", str(dest)],
                                cwd=ROOT, env=env, stdout=out, stderr=out)
    partial = dest / STAGING / "asl-signs.zip"
    try:
        wait_for(stub.stall_reached.is_set, f"kit fetch to reach the stall in the archive (its log: {log})", proc=proc)
        wait_for(lambda: partial.is_file() and partial.stat().st_size >= MiB,
                 f"1 MiB of the archive in {partial} (kit fetch's log: {log})", proc=proc)
    finally:
        proc.kill()
        proc.wait()
        stub.stall_release.set()
    had = partial.stat().st_size
    assert had >= MiB
    result = fetch(dest)
    assert result.exit_code == 0, result.output
    last = stub.gets("asl-signs.zip")[-1]
    assert (last.status, last.headers["Range"]) == (206, f"bytes={had}-")
    assert last.headers["If-Range"] == etag(stub.archive)
    assert landmark_files(dest) == {p: d for p, d in stub.files.items() if p.endswith(".parquet")}
    assert not partial.exists() and (dest / STATE).is_file()
    seen = stub.count
    again = fetch(dest)
    assert again.exit_code == 0 and stub.count == seen, "an unpacked archive is not fetched again"
    assert "unpacked before" in again.output


def test_no_credentials_says_where_to_get_them(stub, tmp_path, monkeypatch):
    """No token, key or kaggle.json: one line naming the token page and where the file goes; no request at all."""
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    result = fetch(tmp_path / "data", "--participants", "1")
    assert result.exit_code == 1
    assert result.output == (
        "Error: no Kaggle credentials found: create an API token at https://www.kaggle.com/settings/api and save "
        "the downloaded kaggle.json as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_API_TOKEN\n"
    )
    assert stub.count == 0


def test_rejected_key_gets_the_credentials_message(stub, tmp_path, monkeypatch):
    """HTTP 401: the message says which credentials Kaggle rejected and where to make new ones."""
    monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    result = fetch(tmp_path / "data", "--participants", str(LONG))
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: Kaggle rejected the credentials from KAGGLE_USERNAME/KAGGLE_KEY (HTTP 401) while downloading "
        "train.csv: create a new API token at https://www.kaggle.com/settings/api"
    )
    assert not (tmp_path / "data" / "train.csv").exists()


def test_rules_not_accepted_says_where_to_accept_them(stub, tmp_path):
    """HTTP 403 on a download means the rules are not accepted: the exact one-line fix."""
    stub.rules_accepted = False
    result = fetch(tmp_path / "data")
    assert result.exit_code == 1
    assert result.output == (
        "Error: accept the competition rules at https://www.kaggle.com/competitions/asl-signs/rules, "
        "then run kit fetch again\n"
    )


@pytest.mark.parametrize("status", [500, 429])
def test_server_errors_are_retried(stub, tmp_path, status):
    """A 5xx or a 429 (honouring Retry-After) is retried after a pause, then the fetch completes."""
    stub.fail_next(status, rpc="DownloadDataFile", retry_after=0 if status == 429 else None)
    result = fetch(tmp_path / "data", "--participants", str(LONG))
    assert result.exit_code == 0, result.output
    assert f"Kaggle: {status} while downloading train.csv; retry in" in result.stderr
    assert (tmp_path / "data" / LONG_FILE).read_bytes() == stub.files[LONG_FILE]


def test_persistent_server_errors_end_clearly_and_keep_what_was_fetched(stub, tmp_path):
    """Retries run out: a clear error, and every file fetched before is still in place."""
    dest = tmp_path / "data"
    a, b, _ = participants_of(stub.files)
    fetch_competition(dest, [a], retry_delays=(0, 0))
    kept = landmark_files(dest)
    stub.fail_next(503, times=10)
    seen = stub.count
    with pytest.raises(KitError, match=r"Kaggle kept failing \(HTTP 503\) while downloading .*/{}/.*, 3 tries: "
                                       r"nothing done so far is lost".format(b)):
        fetch_competition(dest, [a, b], retry_delays=(0, 0))
    assert stub.count - seen == 3
    assert landmark_files(dest) == kept


def evil_archive(files: dict[str, bytes], kind: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
        if kind == "link":
            info = zipfile.ZipInfo("train_landmark_files/link")
            info.external_attr = 0o120777 << 16  # a symbolic link, pointing anywhere
            out.writestr(info, "/etc/passwd")
        else:
            out.writestr(kind, b"evil")
    return buffer.getvalue()


@pytest.mark.parametrize(("kind", "why"), [
    ("../evil", "climbs out of the destination with '..'"),
    ("/tmp/evil", "is an absolute path"),
    ("link", "is a symbolic link"),
])
def test_unsafe_archive_entries_are_refused(stub, tmp_path, kind, why):
    """An archive entry with '..', an absolute path or a link: nothing at all is unpacked."""
    dest = tmp_path / "data"
    stub.archive = evil_archive({"train.csv": stub.files["train.csv"]}, kind)
    result = fetch(dest)
    assert result.exit_code == 1
    name = "train_landmark_files/link" if kind == "link" else kind
    assert result.output.splitlines()[-1] == (f"Error: {dest / STAGING / 'asl-signs.zip'}: entry {name!r} {why}; "
                                              "refusing to unpack anything from this archive")
    assert not (dest / "train.csv").exists() and not (tmp_path / "evil").exists()
    assert not list(tmp_path.rglob("link"))


def test_access_token_is_used_when_set(stub, tmp_path, monkeypatch):
    """KAGGLE_API_TOKEN comes first in the client's order: Kaggle checks it and the calls carry it."""
    stub.token = "kaggle-access-token-1"
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", stub.token)
    result = fetch(tmp_path / "data", "--participants", str(LONG))
    assert result.exit_code == 0, result.output
    assert stub.calls("IntrospectToken")
    assert all(r.headers["Authorization"] == f"Bearer {stub.token}" for r in stub.calls("DownloadDataFile"))


def test_unknown_participant_is_named(stub, tmp_path):
    result = fetch(tmp_path / "data", "--participants", "12345")
    assert result.exit_code == 1
    assert f"Error: {tmp_path / 'data' / 'train.csv'}: no sequences of participant(s) [12345]; participants here:" \
        in result.output


def test_real_samples_arrive_intact(real_samples, tmp_path, monkeypatch):
    """The real competition files (6 of 2 signers, one with frames without a face), through the client and back:
    byte-identical and readable as landmarks."""
    from kit.data.parquet import read_landmarks

    with KaggleStub(tmp_path / "kaggle", read_competition(real_samples)) as server:
        sign_in(monkeypatch, server, tmp_path / "home")
        result = fetch(tmp_path / "data", "--participants", "16069,49445")
        assert result.exit_code == 0, result.output
    got = landmark_files(tmp_path / "data")
    assert len(got) == 6 and all(data == (real_samples / path).read_bytes() for path, data in got.items())
    assert all(read_landmarks(tmp_path / "data" / path).shape[1:] == (543, 3) for path in got)
