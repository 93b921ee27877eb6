"""A finished kernel's outputs, brought into a local run: only the files its manifest lists for finished folds
(names checked: nothing outside the run), each streamed to a `.part` file, resumed with a Range request when the
connection drops, and renamed into place only once its size and sha256 match the manifest.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path, PurePosixPath
from typing import Any

from kit.errors import KitError
from kit.progress import say

MANIFEST = "kit-manifest.json"  # written by the kernel: size and sha256 of every output file
DOWNLOAD_DELAYS = (1.0, 2.0, 4.0, 8.0)  # waits before each retry of a dropped download


def wanted_files(manifest: dict, folds: list[int], kind: str = "fold") -> list[tuple[str, dict]]:
    """The manifest's files a local run needs: folds.csv and each finished fold's (or full fit's) files, each one's
    metrics.json last (it marks it finished, so it lands only after the weights and predictions); names are
    checked."""
    done = {f"{kind}{k}" for k in manifest.get("folds_done", []) if k in folds}
    out = []
    for name, meta in manifest.get("files", {}).items():
        path = PurePosixPath(name)
        if name.startswith("/") or ".." in path.parts or len(path.parts) < 2 or path.parts[0] != "run":
            raise KitError(f"the kernel's {MANIFEST} lists {name!r}, outside its run folder: refusing its output")
        if path.parts[1] == "folds.csv" or (len(path.parts) > 2 and path.parts[1] in done):
            out.append((name, meta))
    return sorted(out, key=lambda item: (PurePosixPath(item[0]).name == "metrics.json", item[0]))


def target_path(name: str) -> Path:
    """run/fold0/model.weights.h5 -> fold0/model.weights.h5 inside the local run."""
    return Path(*PurePosixPath(name).parts[1:])


def _get(url: str, headers: dict | None = None) -> Any:
    import requests

    response = requests.get(url, stream=True, timeout=(20, 120), headers=headers or {})
    if response.status_code >= 400:
        response.close()
        raise KitError(f"Kaggle's storage answered HTTP {response.status_code} for an output file: its link may "
                       "have expired; run the same command again")
    return response


def download_bytes(url: str, what: str) -> bytes:
    import requests

    for delay in (*DOWNLOAD_DELAYS, None):
        try:
            with _get(url) as response:
                return response.content
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError) as err:
            if delay is None:
                raise KitError(f"{what}: the download kept failing ({type(err).__name__}): check the network and run "
                               "the same command again") from None
            time.sleep(delay)
    raise AssertionError("unreachable")


def download_file(url: str, target: Path, size: int, sha256: str) -> None:
    """Stream `url` into target.part (resuming a cut transfer with a Range request), check size and sha256, then
    rename: a file is in its place only once verified."""
    import requests

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for delay in (*DOWNLOAD_DELAYS, None):
        have = part.stat().st_size if part.is_file() else 0
        if have > size:
            part.unlink()
            have = 0
        try:
            headers = {"Range": f"bytes={have}-"} if 0 < have < size else {}
            if have < size:
                with _get(url, headers) as response:
                    append = have and response.status_code == 206
                    with part.open("ab" if append else "wb") as out:
                        for chunk in response.iter_content(1 << 16):  # small: a cut loses at most 64 KiB
                            out.write(chunk)
            break
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError) as err:
            if delay is None:
                raise KitError(f"{target}: the download from Kaggle kept failing ({type(err).__name__}); the part "
                               "that arrived is kept: run the same command again to continue") from None
            say(f"{target.name}: connection lost ({type(err).__name__}) after "
                f"{part.stat().st_size if part.is_file() else 0:,} of {size:,} bytes; resuming in {delay:g} s")
            time.sleep(delay)
    digest = hashlib.sha256()
    with part.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if part.stat().st_size != size or digest.hexdigest() != sha256:
        part.unlink()
        raise KitError(f"{target}: the downloaded file does not match the kernel's manifest (size or sha256): run "
                       "the same command again to download it anew")
    os.replace(part, target)
