"""A Kaggle stand-in for the tests: a real HTTP server on 127.0.0.1 that the real `kaggle` client talks to.

`KaggleStub.env()` points the client at it: KAGGLE_API_ENVIRONMENT=LOCALHOST makes the client send
`POST http://localhost/api/v1/<service>/<Method>` with camelCase JSON, and HTTP_PROXY=http://127.0.0.1:PORT makes
"localhost" this server (in this process or a `kaggle`/`kit` subprocess alike). Nothing in the client is mocked.

It answers the calls kit fetch and kit submit make, as Kaggle does: a download answers with a redirect to a file URL
on another host (as Kaggle redirects to signed storage URLs) that honours Range and If-Range with an ETag; an upload
is StartBlobUpload then PUT to the returned URL; a pushed kernel really runs (python, in a Kaggle-like input/working
layout, without network or credentials) and its output is what CreateCodeSubmission checks.

Training kernels (kit kaggle train): a kernel's status and output are asked for by version label ("v2"; a bare
number is not found, as on Kaggle), its output files (nested names included) are served from file URLs, at most
`max_sessions` pushed kernels of one machine shape run at once (another push is refused as Kaggle refuses it),
DeleteKernel stops a running session, and GetAcceleratorQuotaStatistics answers `quota_used`/`quota_allowed` hours.

Every request is recorded in `requests`; failure modes are switches: `fail_next` (401, 403, 429, 5xx...),
`html_next` (an HTML page instead of JSON, as an overloaded front end sends), `rules_accepted`, `drop_file` (the
connection dies mid-file), `stall_file` (mid-file, until released), `kernel_error` (the next kernel run fails with a
log), `hold_kernels` (pushed kernels stay RUNNING until `release_kernels()`), `kernel_runner` (a function that plays
a kernel's run instead of running its script), `sessions_outlive_delete` (DeleteKernel answers OK but the session
goes on RUNNING and is still reported, as kaggle-cli issue 937 saw).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COMPETITION = "asl-signs"
LAST_MODIFIED = "Thu, 23 Feb 2023 17:00:00 GMT"  # when the competition's data was published
ZIPPED_ON_THE_WAY = {"train.csv"}  # Kaggle serves some single files zipped; the kit must unwrap them
# The most a held kernel or a stalled download waits for its test to release it (stop() releases them all), and
# the most a pushed kernel may train: a bound for a stuck test, not a wait; a busy 2-core machine training two
# kernels beside the suite's other workers is slow, not stuck.
KERNEL_TIMEOUT = 600


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    host: str
    path: str
    headers: dict
    body: dict | None = None
    status: int = 0

    @property
    def rpc(self) -> str:
        """'Service/Method' for an API call, '' otherwise."""
        parts = self.path.split("/")
        return "/".join(parts[3:5]) if self.path.startswith("/api/v1/") else ""


@dataclass
class Kernel:
    versions: list[dict] = field(default_factory=list)  # each: text, meta, status, failure, log, output


def read_competition(folder: Path) -> dict[str, bytes]:
    """A competition folder (train.csv or the samples' samples.csv, the sign map, landmark files) as served files."""
    index = folder / "train.csv" if (folder / "train.csv").is_file() else folder / "samples.csv"
    files = {"train.csv": index.read_bytes(), "sign_to_prediction_index_map.json":
             (folder / "sign_to_prediction_index_map.json").read_bytes()}
    with index.open(newline="") as f:
        for row in csv.DictReader(f):
            files[row["path"]] = (folder / row["path"]).read_bytes()
    return files


def long_sequence(n_frames: int = 200, seed: int = 0) -> bytes:
    """A landmark file in the competition's exact format, a few MB of random coordinates (they do not compress):
    big enough that the client writes whole 1 MiB chunks before a connection is cut."""
    rng = np.random.default_rng(seed)
    types = ["face"] * 468 + ["left_hand"] * 21 + ["pose"] * 33 + ["right_hand"] * 21
    index = [i for n in (468, 21, 33, 21) for i in range(n)]
    frames = np.repeat(np.arange(100, 100 + n_frames, dtype=np.int16), 543)
    xyz = rng.random((n_frames * 543, 3))
    xyz[np.tile(np.array(types) == "right_hand", n_frames)] = np.nan  # a right hand out of view, as often
    table = pa.table({
        "frame": pa.array(frames, pa.int16()),
        "row_id": [f"{f}-{t}-{i}" for f in range(100, 100 + n_frames) for t, i in zip(types, index)],
        "type": types * n_frames,
        "landmark_index": pa.array(np.tile(np.array(index, np.int16), n_frames), pa.int16()),
        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
    })
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def with_sequence(files: dict[str, bytes], participant: int, sequence: int, data: bytes, sign: str) -> dict:
    """`files` plus one landmark file, listed in train.csv."""
    path = f"train_landmark_files/{participant}/{sequence}.parquet"
    train = files["train.csv"].decode().rstrip("\n") + f"\n{path},{participant},{sequence},{sign}\n"
    return {**files, "train.csv": train.encode(), path: data}


def make_zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            kind = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=kind)
    return out.getvalue()


def sign_in(monkeypatch, stub: "KaggleStub", home: Path) -> None:
    """A user with an API key in KAGGLE_USERNAME/KAGGLE_KEY, pointed at `stub`, with `home` as home folder (so that
    no real ~/.kaggle of whoever runs the tests takes part)."""
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    for name, value in {**stub.env(), "KAGGLE_USERNAME": stub.username, "KAGGLE_KEY": stub.key}.items():
        monkeypatch.setenv(name, value)


def _error(status: int, message: str) -> tuple[int, dict]:
    return status, {"code": status, "message": message}


class KaggleStub:
    """The server and its state. Use as a context manager, or start() / stop()."""

    def __init__(self, workdir: Path, files: dict[str, bytes], *, username: str = "kit-tester",
                 key: str = "stub-key-0000", token: str | None = None, public_score: str = "0.7312"):
        self.workdir, self.files = Path(workdir), dict(files)
        self.username, self.key, self.token, self.public_score = username, key, token, public_score
        self.archive = make_zip(self.files)  # what DownloadDataFiles serves; a test may replace it
        self.requests: list[Seen] = []
        self.rules_accepted = True
        self.kernel_error: str | None = None
        self.kernel_runner = None  # (body, input_dir, working_dir) -> (returncode, stdout, stderr)
        self.max_sessions = 2  # running batch sessions per machine shape, as Kaggle allows for GPUs
        self.sessions_outlive_delete = False
        self.quota_used, self.quota_allowed = 3.5, 30.0  # GPU hours this week
        self.hold = threading.Event()
        self.hold.set()
        self._htmls: list[tuple[str, int]] = []
        self._failures: list[tuple[str, int, str, float | None]] = []
        self._drops: dict[str, list[int]] = {}
        self._stalls: dict[str, int] = {}
        self.stall_reached, self.stall_release = threading.Event(), threading.Event()
        self.datasets: dict[str, list[dict[str, bytes]]] = {}
        self.blobs: dict[str, dict] = {}
        self.kernels: dict[str, Kernel] = {}
        self.submissions: list[dict] = []
        self.deleted: list[str] = []
        self._lock = threading.Lock()
        self._runs: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> "KaggleStub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "KaggleStub":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stall_release.set()
        self.hold.set()
        for kernel in list(self.kernels.values()):  # a test that ends early leaves no kernel training behind it
            for version in list(kernel.versions):
                if version.get("proc") is not None and version["proc"].poll() is None:
                    version["proc"].kill()
        for run in self._runs:
            run.join(KERNEL_TIMEOUT)
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def env(self) -> dict[str, str]:
        """The environment that points the real client (and any subprocess) at this server."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": proxy, "http_proxy": proxy,
                "NO_PROXY": "", "no_proxy": ""}

    # ---- switches and records -----------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, rpc: str = "", message: str = "stub failure",
                  retry_after: float | None = None) -> None:
        """The next `times` API calls whose 'Service/Method' contains `rpc` answer `status` with `message`."""
        self._failures += [(rpc, status, message, retry_after)] * times

    def html_next(self, status: int, times: int = 1, rpc: str = "") -> None:
        """The next `times` API calls whose 'Service/Method' contains `rpc` answer `status` with an HTML page."""
        self._htmls += [(rpc, status)] * times

    def hold_kernels(self) -> None:
        """Kernels pushed from now on stay RUNNING until release_kernels()."""
        self.hold.clear()

    def release_kernels(self) -> None:
        self.hold.set()

    def drop_file(self, name: str, after: int, times: int = 1) -> None:
        """The next `times` downloads of `name` send `after` bytes of the body, then the connection dies."""
        self._drops[name] = [after] * times

    def stall_file(self, name: str, after: int) -> None:
        """The next download of `name` sends `after` bytes, sets stall_reached, then waits for stall_release."""
        self._stalls[name] = after

    @property
    def count(self) -> int:
        return len(self.requests)

    def calls(self, method: str) -> list[Seen]:
        """The API calls to `method` (e.g. 'DownloadDataFile'), in order."""
        return [r for r in self.requests if r.rpc.endswith("/" + method)]

    def gets(self, name: str) -> list[Seen]:
        """The file GETs of `name` (e.g. 'asl-signs.zip'), in order."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + name)]

    # ---- request handling ---------------------------------------------------------------------------------

    def handle(self, h: "_Handler") -> None:
        url = urlsplit(h.path)
        seen = Seen(h.command, url.netloc or h.headers.get("Host", ""), unquote(url.path), dict(h.headers))
        with self._lock:
            self.requests.append(seen)
        body = h.read_body()
        if seen.rpc:
            seen.body = json.loads(body or b"{}")
            status, payload = self._api(seen, h)
            if status:
                seen.status = status
                h.send_json(status, payload)
        elif h.command == "GET" and seen.path.startswith("/files/"):
            self._serve_file(seen, h)
        elif h.command == "PUT" and seen.path.startswith("/upload/"):
            self.blobs[seen.path.split("/")[-1]]["data"] = body
            seen.status = 200
            h.send_json(200, {})
        else:
            seen.status = 404
            h.send_json(*_error(404, f"no such path {seen.path}"))

    def _authorized(self, seen: Seen) -> bool:
        auth = seen.headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"{self.username}:{self.key}".encode()).decode()
        return auth == basic or (self.token is not None and auth == f"Bearer {self.token}")

    def _api(self, seen: Seen, h: "_Handler") -> tuple[int, dict]:
        for i, (rpc, status) in enumerate(self._htmls):
            if rpc in seen.rpc:
                del self._htmls[i]
                seen.status = status
                page = f"<html><body><h1>{status} Service Unavailable</h1>Please try again.</body></html>".encode()
                h.send_raw(status, {"Content-Type": "text/html", "Content-Length": str(len(page))}, page)
                return 0, {}
        for i, (rpc, status, message, retry_after) in enumerate(self._failures):
            if rpc in seen.rpc:
                del self._failures[i]
                if retry_after is not None:
                    h.extra_headers["Retry-After"] = f"{retry_after:g}"
                return _error(status, message)
        method = seen.rpc.split("/")[1]
        if method == "IntrospectToken":
            ok = self.token is not None and seen.body.get("token") == self.token
            return 200, {"active": True, "username": self.username} if ok else {"active": False}
        if not self._authorized(seen):
            return _error(401, "Unauthenticated")
        handler = getattr(self, f"_rpc_{method}", None)
        if handler is None:
            return _error(404, f"the stub does not answer {seen.rpc}")
        return handler(seen.body, seen, h)

    def _file_base(self, seen: Seen) -> str:
        # Files come from another host than the API, as Kaggle's come from signed storage URLs: the client's
        # requests then drop the Authorization header on the redirect, as they do against Kaggle.
        host = "127.0.0.1" if seen.host.split(":")[0] == "localhost" else "localhost"
        return f"http://{host}:{self.port}"

    def _redirect(self, seen: Seen, h: "_Handler", path: str) -> tuple[int, dict]:
        seen.status = 302
        h.send_redirect(self._file_base(seen) + path)
        return 0, {}

    # ---- competitions -------------------------------------------------------------------------------------

    def _rpc_DownloadDataFile(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        if body.get("competitionName") != COMPETITION:
            return _error(404, "Competition not found")
        if not self.rules_accepted:
            return _error(403, "You must accept this competition's rules before you'll be able to download files.")
        name = body.get("fileName", "")
        if name not in self.files:
            return _error(404, f"No file {name}")
        suffix = ".zip" if name in ZIPPED_ON_THE_WAY else ""
        return self._redirect(seen, h, f"/files/{COMPETITION}/{name}{suffix}")

    def _rpc_DownloadDataFiles(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        if body.get("competitionName") != COMPETITION:
            return _error(404, "Competition not found")
        if not self.rules_accepted:
            return _error(403, "You must accept this competition's rules before you'll be able to download files.")
        return self._redirect(seen, h, f"/files/{COMPETITION}/{COMPETITION}.zip")

    def file_bytes(self, path: str) -> bytes | None:
        if path.startswith("/files/kernels/"):  # /files/kernels/<owner>__<slug>/v<N>/<name...>
            ref, number, name = path.removeprefix("/files/kernels/").split("/", 2)
            kernel = self.kernels.get(ref.replace("__", "/"))
            versions = kernel.versions if kernel else []
            n = int(number[1:])
            return versions[n - 1]["output"].get(name) if 0 < n <= len(versions) else None
        name = path.removeprefix(f"/files/{COMPETITION}/")
        if name == f"{COMPETITION}.zip":
            return self.archive
        if name.endswith(".zip") and name[:-4] in ZIPPED_ON_THE_WAY:
            return make_zip({name[:-4].split("/")[-1]: self.files[name[:-4]]})
        return self.files.get(name)

    def _serve_file(self, seen: Seen, h: "_Handler") -> None:
        data = self.file_bytes(seen.path)
        if data is None:
            seen.status = 404
            h.send_json(*_error(404, "no such file"))
            return
        etag = f'"{hashlib.sha1(data).hexdigest()}"'
        start, status = 0, 200
        wanted, if_range = seen.headers.get("Range", ""), seen.headers.get("If-Range")
        if wanted.startswith("bytes=") and (if_range is None or if_range in (etag, LAST_MODIFIED)):
            start = int(wanted[len("bytes="):].split("-")[0])
            if start >= len(data):
                seen.status = 416
                h.send_json(*_error(416, "range not satisfiable"))
                return
            status = 206
        body = data[start:]
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        seen.status = status
        name = seen.path.split("/")[-1]
        drops = self._drops.get(name)
        if drops:
            h.send_cut(status, headers, body[: drops.pop(0)])
        elif name in self._stalls:
            after = self._stalls.pop(name)
            h.send_cut(status, headers, body[:after], before_cut=self._stall)
        else:
            h.send_raw(status, headers, body)

    def _stall(self) -> None:
        self.stall_reached.set()
        self.stall_release.wait(KERNEL_TIMEOUT)

    def _rpc_CreateCodeSubmission(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        if not self.rules_accepted:
            return _error(403, "You must accept this competition's rules to submit.")
        ref = f"{body.get('kernelOwner')}/{body.get('kernelSlug')}"
        kernel = self.kernels.get(ref)
        number = body.get("kernelVersion")
        if kernel is None or not number or number > len(kernel.versions):
            return _error(404, f"Kernel {ref} version {number} not found")
        version = kernel.versions[number - 1]
        output = version.get("output", {}).get(body.get("fileName", ""))
        if version["status"] != "COMPLETE" or output is None:
            return _error(400, f"Kernel version {number} has no output file {body.get('fileName')}")
        with zipfile.ZipFile(io.BytesIO(output)) as zf:
            valid = zf.namelist() == ["model.tflite"]
        sub = {"ref": 50_000 + len(self.submissions), "date": "2024-05-01T12:00:00.000Z",
               "description": body.get("submissionDescription", ""), "fileName": body.get("fileName"),
               "status": "PENDING", "polls": 0, "valid": valid}
        self.submissions.insert(0, sub)
        return 200, {"message": "Successfully submitted", "ref": sub["ref"]}

    def _rpc_ListSubmissions(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        out = []
        for sub in self.submissions:
            sub["polls"] += 1
            if sub["status"] == "PENDING" and sub["polls"] > 1 and sub["valid"]:  # scored by the second look
                sub.update(status="COMPLETE", publicScore=self.public_score)
            elif sub["status"] == "PENDING" and sub["polls"] > 1:
                sub.update(status="ERROR", errorDescription="submission.zip must hold exactly model.tflite")
            out.append({k: v for k, v in sub.items() if k not in ("polls", "valid")})
        return 200, {"submissions": out}

    # ---- datasets and blobs -------------------------------------------------------------------------------

    def _rpc_StartBlobUpload(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        token = f"blob{len(self.blobs) + 1}"
        self.blobs[token] = {"name": body.get("name"), "data": None}
        return 200, {"token": token, "createUrl": f"{self._file_base(seen)}/upload/{token}"}

    def _dataset_files(self, files: list[dict]) -> dict[str, bytes] | None:
        blobs = [self.blobs.get(f.get("token", "")) for f in files]
        if not blobs or any(b is None or b["data"] is None for b in blobs):
            return None
        return {b["name"]: b["data"] for b in blobs}

    def _rpc_CreateDataset(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('slug')}"
        if body.get("ownerSlug") != self.username:
            return _error(403, "You can only create datasets you own")
        files = self._dataset_files(body.get("files", []))
        if ref in self.datasets or files is None:
            return 200, {"status": "error", "error": "dataset exists or an upload is missing"}
        self.datasets[ref] = [files]
        return 200, {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "ok",
                     "private": not body.get("isPrivate")}

    def _rpc_CreateDatasetVersion(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return _error(404, f"Dataset {ref} not found")
        files = self._dataset_files(body.get("body", {}).get("files", []))
        if files is None:
            return 200, {"status": "error", "error": "an upload is missing"}
        self.datasets[ref].append(files)
        return 200, {"ref": ref, "url": f"https://www.kaggle.com/datasets/{ref}", "status": "ok"}

    def _rpc_ListDatasetFiles(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return _error(404, f"Dataset {ref} not found")
        files = self.datasets[ref][-1]
        return 200, {"datasetFiles": [{"ref": n, "name": n, "totalBytes": len(d)} for n, d in files.items()]}

    def _rpc_GetDatasetStatus(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return _error(404, f"Dataset {ref} not found")
        return 200, {"status": "READY"}

    # ---- kernels ------------------------------------------------------------------------------------------

    def _rpc_SaveKernel(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = body.get("slug", "")
        if ref.split("/")[0] != self.username:
            return _error(403, "You can only push kernels you own")
        bad = [d for d in body.get("datasetDataSources", []) if d not in self.datasets]
        bad_comp = [c for c in body.get("competitionDataSources", []) if c != COMPETITION]
        if bad or bad_comp:
            return 200, {"invalidDatasetSources": bad, "invalidCompetitionSources": bad_comp}
        shape = body.get("machineShape")
        running = [v for k in self.kernels.values() for v in k.versions
                   if v["status"] in ("QUEUED", "RUNNING") and v["body"].get("machineShape") == shape]
        if shape and len(running) >= self.max_sessions:
            return 200, {"error": f"Maximum batch GPU session count of {self.max_sessions} reached."}
        kernel = self.kernels.setdefault(ref, Kernel())
        version = {"body": body, "status": "RUNNING", "failure": None, "log": "", "output": {}, "proc": None}
        kernel.versions.append(version)
        number = len(kernel.versions)
        run = threading.Thread(target=self._run_kernel, args=(ref, number, version), daemon=True)
        self._runs.append(run)
        run.start()
        url = f"https://www.kaggle.com/code/{ref}"
        return 200, {"ref": f"/code/{ref}", "url": url, "versionNumber": number, "kernelId": 7}

    def _run_kernel(self, ref: str, number: int, version: dict) -> None:
        """Run the pushed script as Kaggle would: datasets and competition under input/, output in working/."""
        self.hold.wait(KERNEL_TIMEOUT)
        if version["status"] != "RUNNING":  # deleted while it waited
            return
        if self.kernel_error:
            version.update(status="ERROR", failure=self.kernel_error,
                           log=json.dumps([{"stream_name": "stderr", "time": 1.0, "data": self.kernel_error + "\n"}]))
            self.kernel_error = None
            return
        root = self.workdir / "kernels" / ref.replace("/", "__") / f"v{number}"
        inputs, working = root / "input", root / "working"
        for source in version["body"].get("datasetDataSources", []):
            for name, data in self.datasets[source][-1].items():
                (inputs / source.split("/")[1]).mkdir(parents=True, exist_ok=True)
                (inputs / source.split("/")[1] / name).write_bytes(data)
        for name, data in self.files.items():
            (inputs / COMPETITION / name).parent.mkdir(parents=True, exist_ok=True)
            (inputs / COMPETITION / name).write_bytes(data)
        working.mkdir(parents=True)
        if self.kernel_runner is not None:
            try:
                code, out, err = self.kernel_runner(version["body"], inputs, working)
            except Exception as error:  # a kernel that crashes ends in error, as on Kaggle, not RUNNING for ever
                code, out, err = 1, "", f"kaggle stub: the kernel runner raised {error!r}\n"
        else:
            script = root / version["body"].get("slug", "k").split("/")[1]
            script = script.with_suffix(".py")
            script.write_text(version["body"]["text"])
            env = {"PATH": os.environ.get("PATH", ""), "HOME": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
            proc = subprocess.Popen([sys.executable, str(script), "--input", str(inputs), "--output", str(working)],
                                    cwd=working, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            version["proc"] = proc
            try:
                out, err = proc.communicate(timeout=KERNEL_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err += f"\nkaggle stub: the kernel ran past KERNEL_TIMEOUT ({KERNEL_TIMEOUT} s) and was killed\n"
            code = proc.returncode
        log = [{"stream_name": "stdout", "time": 0.5, "data": out}, {"stream_name": "stderr", "time": 1.0, "data": err}]
        output = {p.relative_to(working).as_posix(): p.read_bytes() for p in sorted(working.rglob("*"))
                  if p.is_file()}
        if version["status"] != "RUNNING":  # deleted while it ran: Kaggle keeps nothing of it
            return
        ok = code == 0
        version.update(status="COMPLETE" if ok else "ERROR", log=json.dumps(log), output=output,
                       failure=None if ok else f"The script exited with status {code}")

    def _version(self, body: dict) -> tuple[dict | None, str]:
        """The version a status or output request names by label ("v2"), else the newest; (None, why) if none."""
        kernel = self.kernels.get(f"{body.get('userName')}/{body.get('kernelSlug')}")
        if kernel is None or not kernel.versions:
            return None, "Kernel not found"
        label = body.get("versionLabel")
        if label is None:
            return kernel.versions[-1], ""
        if not (label.startswith("v") and label[1:].isdigit()) or not 0 < int(label[1:]) <= len(kernel.versions):
            return None, f"Kernel version {label} not found"
        return kernel.versions[int(label[1:]) - 1], ""

    def _rpc_GetKernel(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        kernel = self.kernels.get(ref)
        if kernel is None:
            return _error(404, "Kernel not found")
        return 200, {"metadata": {"ref": ref, "slug": body.get("kernelSlug"),
                                  "currentVersionNumber": len(kernel.versions)}}

    def _rpc_DeleteKernel(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        if self.sessions_outlive_delete and ref in self.kernels:
            self.deleted.append(ref)
            return 200, {}
        kernel = self.kernels.pop(ref, None)
        if kernel is None:
            return _error(404, "Kernel not found")
        for version in kernel.versions:
            if version["status"] in ("QUEUED", "RUNNING"):
                version["status"] = "CANCEL_ACKNOWLEDGED"
                if version.get("proc") is not None:
                    version["proc"].kill()
        self.deleted.append(ref)
        return 200, {}

    def _rpc_GetAcceleratorQuotaStatistics(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        hours = lambda x: f"{x * 3600:.0f}s"  # noqa: E731 (protobuf Duration JSON)
        return 200, {"quotaRefreshTime": "2026-12-05T00:00:00Z",
                     "gpuQuota": {"timeUsed": hours(self.quota_used), "totalTimeAllowed": hours(self.quota_allowed)},
                     "tpuQuota": {"timeUsed": hours(0), "totalTimeAllowed": hours(20)}}

    def _rpc_GetKernelSessionStatus(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        version, why = self._version(body)
        if version is None:
            return _error(404, why)
        answer = {"status": version["status"]}
        if version["failure"]:
            answer["failureMessage"] = version["failure"]
        return 200, answer

    def _rpc_ListKernelSessionOutput(self, body: dict, seen: Seen, h) -> tuple[int, dict]:
        version, why = self._version(body)
        if version is None:
            return _error(404, why)
        kernel = self.kernels[f"{body.get('userName')}/{body.get('kernelSlug')}"]
        number = kernel.versions.index(version) + 1
        base = f"{self._file_base(seen)}/files/kernels/{body.get('userName')}__{body.get('kernelSlug')}/v{number}"
        return 200, {"log": version["log"],
                     "files": [{"fileName": n, "url": f"{base}/{n}"} for n in version["output"]]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and Content-Length, as the client expects

    def setup(self) -> None:
        super().setup()
        self.extra_headers: dict[str, str] = {}

    def do_GET(self) -> None:
        self._do()

    do_POST = do_PUT = do_GET

    def _do(self) -> None:
        self.extra_headers = {}
        self.server.stub.handle(self)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if not size:
                    return out
                out += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_raw(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for k, v in {**headers, **self.extra_headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_raw(status, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)

    def send_redirect(self, location: str) -> None:
        self.send_raw(302, {"Location": location, "Content-Length": "0"}, b"")

    def send_cut(self, status: int, headers: dict, part: bytes, before_cut=None) -> None:
        """Promise the whole body, send `part`, then (after `before_cut`) kill the connection."""
        self.send_raw(status, headers, part)
        self.wfile.flush()
        if before_cut:
            before_cut()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

