"""kit kaggle train: the folds trained in Kaggle kernels on T4 x2 or TPU v5e-8, pulled back into a local run.

(1) The running kit goes up as a wheel in a private dataset (a new version only when the code changed: the wheel's
name carries a hash of its contents). (2) kernels/train.py is rendered once per group of folds, with the job (the
wheel and its sha256, the resolved config, the folds, the backend) written into it, the competition and the dataset
attached, the accelerator set by `machine_shape` and internet on. (3) Kernels are pushed while fewer than
`--parallel` of them run, and (4) each is polled by its own version. (5) A finished kernel's output files are
streamed to temporary files, checked against the kernel's manifest (size and sha256) and only then renamed into
RUN/fold{K}/, so that `kit cv`, `kit export` and `kit submit` take the run as if it had trained here.

Progress is kept in RUN/kaggle/state.json (no secret in it). A re-run after any failure or kill goes on from there:
a pushed kernel is never pushed again while it may still run (a kill between push and the state file is caught by
asking Kaggle for the kernel's newest version), a verified file is never downloaded again, and a kernel that failed
or was cancelled is pushed again for the folds it did not finish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kit import config as config_mod
from kit import kaggle_api, wheel
from kit.config import Config
from kit.errors import KitError
from kit.kaggle_api import COMPETITION
from kit.progress import say

DATASET_SLUG = "asl-signs-kit-wheel"  # one private dataset per user; each new kit is a new version
DATASET_TITLE = "asl-signs kit wheel"
KERNEL_TEMPLATE = Path(__file__).resolve().parents[1] / "kernels" / "train.py"
JOB_LINE = "JOB = None"  # the line of kernels/train.py that rendering fills in
MANIFEST = "kit-manifest.json"  # written by the kernel: size and sha256 of every output file
OFFLINE_OWNER = "your-kaggle-username"
# --accelerator -> (machine_shape, quota name, default Keras backend). T4 x2 trains with the image's GPU TensorFlow
# (MirroredStrategy over both GPUs); the TPU v5e-8 image trains with JAX (Keras' data parallelism over 8 cores).
ACCELERATORS = {"t4": ("NvidiaTeslaT4", "gpu", "tensorflow"), "tpu": ("TpuV5E8", "tpu", "jax")}
SESSION_HOURS = {"t4": 12, "tpu": 9}  # Kaggle stops a GPU session at 12 h, a TPU session at 9 h
MAX_PARALLEL = {"t4": 2, "tpu": 1}  # concurrent batch sessions Kaggle allows per accelerator
ACTIVE = ("queued", "running", "new_script", "cancel_requested")
BUSY = re.compile(r"maximum .*session|too many .*session|concurrent", re.I)
QUOTA = re.compile(r"quota", re.I)
DOWNLOAD_DELAYS = (1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class Plan:
    run_dir: Path
    owner: str
    cfg: Config
    n_folds: int
    groups: tuple[tuple[int, ...], ...]  # the folds of each kernel
    accelerator: str
    backend: str
    parallel: int
    kit_wheel: wheel.Wheel = field(repr=False)

    @property
    def kaggle_dir(self) -> Path:
        return self.run_dir / "kaggle"

    @property
    def dataset_dir(self) -> Path:
        return self.kaggle_dir / "dataset"

    @property
    def dataset_ref(self) -> str:
        return f"{self.owner}/{DATASET_SLUG}"

    @property
    def tag(self) -> str:
        """Six hex digits of the config and fold count: a changed config never reuses a kernel."""
        text = json.dumps(self.cfg.to_dict(), sort_keys=True) + f"/{self.n_folds}"
        return hashlib.sha256(text.encode()).hexdigest()[:6]

    def slug(self, folds: tuple[int, ...]) -> str:
        name = re.sub(r"[^a-z0-9]+", "-", self.run_dir.resolve().name.lower()).strip("-")[:20].strip("-") or "run"
        return f"kit-{name}-{self.tag}-f{'-'.join(map(str, folds)) if self.n_folds > 10 else ''.join(map(str, folds))}"

    def kernel_ref(self, folds: tuple[int, ...]) -> str:
        return f"{self.owner}/{self.slug(folds)}"

    def kernel_dir(self, folds: tuple[int, ...]) -> Path:
        return self.kaggle_dir / "kernels" / self.slug(folds)


def fold_groups(folds: list[int], parallel: int, per_kernel: int | None) -> tuple[tuple[int, ...], ...]:
    """Folds split into consecutive groups, one kernel each: `per_kernel` folds, or by default as few folds per
    kernel as lets every kernel run at once (5 folds on 2 parallel sessions: 3 + 2)."""
    size = per_kernel or math.ceil(len(folds) / max(parallel, 1))
    return tuple(tuple(folds[i:i + size]) for i in range(0, len(folds), size))


def make_plan(cfg: Config, run_dir: Path, owner: str, *, n_folds: int = 5, only_folds: list[int] | None = None,
              accelerator: str = "t4", parallel: int = 2, per_kernel: int | None = None,
              backend: str | None = None) -> Plan:
    if accelerator not in ACCELERATORS:
        raise KitError(f"--accelerator {accelerator!r} is not known; use t4 (T4 x2) or tpu (TPU v5e-8)")
    if backend not in (None, "tensorflow", "jax"):
        raise KitError(f"--backend {backend!r} is not known; use tensorflow or jax")
    if not 1 <= parallel <= MAX_PARALLEL[accelerator]:
        raise KitError(f"--parallel {parallel}: Kaggle runs 1 to {MAX_PARALLEL[accelerator]} {accelerator} sessions "
                       "at once")
    if n_folds < 2:
        raise KitError(f"--folds {n_folds}: GroupKFold needs at least 2 folds")
    folds = list(range(n_folds)) if not only_folds else sorted(set(only_folds))
    bad = [k for k in folds if not 0 <= k < n_folds]
    if bad:
        raise KitError(f"--fold {bad[0]} is out of range: with --folds {n_folds} use 0..{n_folds - 1}")
    if per_kernel is not None and per_kernel < 1:
        raise KitError(f"--folds-per-kernel {per_kernel}: give 1 or more")
    return Plan(Path(run_dir), owner, cfg, n_folds, fold_groups(folds, parallel, per_kernel), accelerator,
                backend or ACCELERATORS[accelerator][2], parallel, wheel.build())


# ---- state ----------------------------------------------------------------------------------------------------

def state_path(run_dir: Path) -> Path:
    return Path(run_dir) / "kaggle" / "state.json"


def load_state(run_dir: Path) -> dict:
    path = state_path(run_dir)
    return json.loads(path.read_text()) if path.is_file() else {}


def save_state(run_dir: Path, state: dict) -> None:
    path = state_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def _fresh_group(folds: tuple[int, ...]) -> dict:
    return {"folds": list(folds), "version": None, "pushing": None, "status": "waiting", "pushed_at": None,
            "ended_at": None, "failure": None, "url": None, "files": {}}


def init_state(plan: Plan) -> dict:
    """The run's state: recorded progress, checked against this plan (one run, one config)."""
    state = load_state(plan.run_dir)
    settings = {"n_folds": plan.n_folds, "accelerator": plan.accelerator, "backend": plan.backend,
                "parallel": plan.parallel, "tag": plan.tag}
    if state and state.get("tag") != plan.tag:
        raise KitError(f"{plan.run_dir} holds Kaggle kernels of another config or fold count: give a new --out, "
                       f"or continue it with kit kaggle train --resume {plan.run_dir}")
    state.update(settings)
    state.setdefault("groups", {})
    for folds in plan.groups:
        state["groups"].setdefault(plan.slug(folds), _fresh_group(folds))
    return state


def check_run_config(plan: Plan) -> None:
    """RUN/config.json is the run's config: written once, and a different one in the same folder is an error."""
    path = plan.run_dir / "config.json"
    if path.is_file() and config_mod.load(path) != plan.cfg:
        raise KitError(f"{plan.run_dir} holds a run with another config: give a new --out, or continue it with "
                       f"kit kaggle train --resume {plan.run_dir}")
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    plan.cfg.save(path)


# ---- rendering --------------------------------------------------------------------------------------------------

def _write_if_changed(path: Path, data: bytes) -> None:
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def render_dataset(plan: Plan) -> Path:
    """RUN/kaggle/dataset: the wheel and dataset-metadata.json, nothing else (older wheels are removed)."""
    for old in plan.dataset_dir.glob("kit-*.whl"):
        if old.name != plan.kit_wheel.name:
            old.unlink()
    meta = {"title": DATASET_TITLE, "id": plan.dataset_ref, "licenses": [{"name": "CC0-1.0"}]}
    _write_if_changed(plan.dataset_dir / "dataset-metadata.json", json.dumps(meta, indent=2).encode())
    _write_if_changed(plan.dataset_dir / plan.kit_wheel.name, plan.kit_wheel.data)
    return plan.dataset_dir


def job(plan: Plan, folds: list[int]) -> dict:
    return {"wheel": plan.kit_wheel.name, "wheel_sha256": plan.kit_wheel.sha256, "n_folds": plan.n_folds,
            "folds": folds, "config": plan.cfg.to_dict(), "recipe": None, "overrides": [], "backend": plan.backend,
            "strategy": "auto", "internet": True}


def render_kernel(plan: Plan, group: tuple[int, ...], folds: list[int], template: Path = KERNEL_TEMPLATE) -> Path:
    """RUN/kaggle/kernels/<slug>: train.py with the job filled in, and kernel-metadata.json."""
    if not template.is_file():
        raise KitError(f"{template}: the training kernel is missing; kit kaggle train needs the kernels/ folder")
    lines = template.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(JOB_LINE)]
    if len(hits) != 1:
        raise KitError(f"{template}: expected one line starting {JOB_LINE!r}, found {len(hits)}")
    lines[hits[0]] = f"JOB = {job(plan, folds)!r}  # written by kit kaggle train\n"
    slug = plan.slug(group)
    meta = {
        "id": f"{plan.owner}/{slug}", "title": slug, "code_file": "train.py", "language": "python",
        "kernel_type": "script", "is_private": True,
        # The accelerator is the machine shape; enable_gpu/enable_tpu are deprecated (alone, they got users the
        # wrong GPU), and a pinned docker_image silently moves a TPU session onto a CPU image: both left out.
        "machine_shape": ACCELERATORS[plan.accelerator][0],
        "enable_internet": True,  # to pip-install what the image lacks; the kit itself installs offline
        "dataset_sources": [plan.dataset_ref], "competition_sources": [COMPETITION],
        "kernel_sources": [], "model_sources": [],
    }
    folder = plan.kernel_dir(group)
    _write_if_changed(folder / "train.py", "".join(lines).encode())
    _write_if_changed(folder / "kernel-metadata.json", json.dumps(meta, indent=2).encode())
    return folder


def remaining_folds(plan: Plan, group: dict) -> list[int]:
    """The group's folds that are not finished here (RUN/fold{K}/metrics.json is the mark, as for kit train)."""
    return [k for k in group["folds"] if not (plan.run_dir / f"fold{k}" / "metrics.json").is_file()]


# ---- the work -----------------------------------------------------------------------------------------------

@dataclass
class Report:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def train_on_kaggle(plan: Plan, *, dry_run: bool = False, wait: bool = True, poll_seconds: float = 60.0,
                    max_wait_seconds: float = 13 * 3600.0) -> Report:
    """See the module docstring. `dry_run` renders everything and sends nothing; `wait=False` does what can be
    done now (upload, push, download what finished) and returns."""
    check_run_config(plan)
    if dry_run:
        state = init_state(plan)
        _render(plan, state)
        return _dry_run(plan, state)
    creds = kaggle_api.require_credentials()
    api = kaggle_api.client(creds)
    plan = dataclasses.replace(plan, owner=api.config_values["username"])
    state = init_state(plan)
    if state.setdefault("owner", plan.owner) != plan.owner:
        raise KitError(f"{plan.run_dir} trains in {state['owner']}'s Kaggle kernels, but the credentials from "
                       f"{creds.source} are {plan.owner}'s: use {state['owner']}'s, or a new --out")
    _render(plan, state)
    save_state(plan.run_dir, state)
    session = _Session(api, creds, plan, state, wait, poll_seconds, max_wait_seconds)
    session.go()
    return session.report


def _render(plan: Plan, state: dict) -> None:
    render_dataset(plan)
    for group in state["groups"].values():
        render_kernel(plan, tuple(group["folds"]), remaining_folds(plan, group) or group["folds"])


def _dry_run(plan: Plan, state: dict) -> Report:
    creds = kaggle_api.find_credentials()
    report = Report()
    machine = ACCELERATORS[plan.accelerator][0]
    report.add(f"dry run: nothing sent; rendered {plan.kaggle_dir}")
    report.add(f"credentials: {creds.source if creds else 'none found: ' + kaggle_api.no_credentials_message()}")
    report.add(f"1. dataset {plan.dataset_ref} (private): {plan.kit_wheel.name}, {len(plan.kit_wheel.data):,} bytes"
               + (" (already uploaded)" if state.get("wheel") == plan.kit_wheel.name else ""))
    for n, (slug, group) in enumerate(state["groups"].items(), start=2):
        todo = remaining_folds(plan, group)
        what = (f"folds {todo} to train" if todo else "all folds downloaded") + (
            f", version {group['version']} {group['status']}" if group["version"] else "")
        report.add(f"{n}. kernel {plan.owner}/{slug} on {machine} ({plan.backend}), {what}: "
                   f"{plan.kaggle_dir / 'kernels' / slug}")
    report.add(f"at most {plan.parallel} at once; each polled by version, its outputs verified into {plan.run_dir}")
    return report


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class _Session:
    def __init__(self, api: Any, creds: kaggle_api.Credentials, plan: Plan, state: dict, wait: bool, poll: float,
                 limit: float):
        self.api, self.creds, self.plan, self.state = api, creds, plan, state
        self.wait, self.poll, self.limit = wait, poll, limit
        self.report = Report()
        self.failures: list[str] = []
        self.new_folds = 0

    def _call(self, fn: Callable[[], Any], doing: str) -> Any:
        return kaggle_api.call(fn, doing, self.creds)

    def _save(self) -> None:
        save_state(self.plan.run_dir, self.state)

    @property
    def groups(self) -> dict[str, dict]:
        return self.state["groups"]

    def go(self) -> None:
        for group in self.groups.values():
            if group["status"] in ("error", "cancelled") and remaining_folds(self.plan, group):
                group.update(status="waiting", version=None, failure=None, files={})  # it goes again
            elif group["status"] == "waiting" and not remaining_folds(self.plan, group):
                group["status"] = "done"  # its folds were trained here (kit train --fold K) or came back already
        self._save()
        self.dataset()
        deadline = time.monotonic() + self.limit
        while True:
            self.push_what_fits()
            self.poll_active()
            pending = [g for g in self.groups.values() if g["status"] not in ("done", "error", "cancelled")]
            if not pending or not self.wait or time.monotonic() > deadline:
                break
            time.sleep(self.poll)
        self.finish()

    # -- the wheel ------------------------------------------------------------------------------------------

    def dataset(self) -> None:
        ref, name = self.plan.dataset_ref, self.plan.kit_wheel.name
        if self.state.get("wheel") != name or not self.state.get("dataset_ready"):
            if self.state.get("wheel") != name and name not in self._dataset_files(ref):
                self._upload(ref, name)
            self.state.update(wheel=name, dataset_ready=False)
            self._save()
            self._wait_ready(ref)
        self.report.add(f"dataset {ref}: holds {name}")

    def _dataset_files(self, ref: str) -> list[str]:
        def names() -> list[str]:
            try:
                result = self.api.dataset_list_files(ref)
            except Exception as err:
                if kaggle_api.http_status(err) == 404:
                    return []
                raise
            return [f.name for f in (result.dataset_files or [])] if result is not None else []

        return self._call(names, f"listing the files of {ref}")

    def _upload(self, ref: str, name: str) -> None:
        folder = str(self.plan.dataset_dir)
        exists = kaggle_api.dataset_exists(self.api, ref, self.creds)
        say(f"dataset {ref}: uploading {name} ({len(self.plan.kit_wheel.data) / 2**10:.0f} KB)")
        kaggle_api.upload_dataset(self.api, self.creds, folder, ref, exists, f"kit {name}")
        self.report.add(f"dataset {ref}: {'new version' if exists else 'created (private)'} with {name}")

    def _wait_ready(self, ref: str) -> None:
        deadline = time.monotonic() + max(self.limit, 600)
        while True:
            status = kaggle_api.dataset_status(self.api, ref, self.creds) or "not found"
            if status == "ready":
                self.state["dataset_ready"] = True
                self._save()
                return
            if status == "failed":
                self.state["wheel"] = None
                self._save()
                raise KitError(f"Kaggle failed to process the dataset {ref}: run kit kaggle train again to upload "
                               "it anew")
            if time.monotonic() > deadline:
                raise KitError(f"the dataset {ref} is still processing ({status}): run kit kaggle train again later")
            say(f"dataset {ref}: {status}")
            time.sleep(self.poll)

    # -- pushing --------------------------------------------------------------------------------------------

    def _active(self) -> list[dict]:
        return [g for g in self.groups.values() if g["version"] and g["status"] in ACTIVE]

    def push_what_fits(self) -> None:
        for slug, group in self.groups.items():
            if group["pushing"] is not None and group["version"] is None:
                self._adopt(slug, group)
        for slug, group in self.groups.items():
            if group["status"] != "waiting" or group["version"] is not None:
                continue
            if len(self._active()) >= self.plan.parallel:
                return
            if not self._push(slug, group):
                return

    def _adopt(self, slug: str, group: dict) -> None:
        """A kill between the push and the state file: if Kaggle has a newer version than we knew, it is ours."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        ref = f"{self.plan.owner}/{slug}"

        def newest() -> int | None:
            request = ApiGetKernelRequest()
            request.user_name, request.kernel_slug = self.plan.owner, slug
            try:
                with self.api.build_kaggle_client() as kaggle:
                    return kaggle.kernels.kernels_api_client.get_kernel(request).metadata.current_version_number
            except Exception as err:
                if kaggle_api.http_status(err) == 404:
                    return None
                raise

        version = self._call(newest, f"looking up the kernel {ref}")
        if version and version > (group["pushing"].get("after") or 0):
            group.update(version=version, status="queued", pushed_at=group["pushing"]["at"],
                         url=f"https://www.kaggle.com/code/{ref}")
            say(f"kernel {ref}: version {version} was pushed before kit stopped; following it")
        group["pushing"] = None
        self._save()

    def _push(self, slug: str, group: dict) -> bool:
        """Push one kernel; False when Kaggle has no free session for it now."""
        ref = f"{self.plan.owner}/{slug}"
        folds = remaining_folds(self.plan, group)
        folder = render_kernel(self.plan, tuple(group["folds"]), folds)
        # Kept until the answer is recorded: if kit dies or the answer is lost, the next run asks Kaggle whether the
        # push arrived (_adopt) instead of starting a second session of these folds.
        group["pushing"] = {"at": time.time(), "after": group.get("last_version") or 0}
        self._save()

        def push() -> tuple[Any, str]:
            try:
                return self.api.kernels_push(str(folder)), ""
            except Exception as err:  # a refusal for quota or a busy session is an answer, not a failure
                text = kaggle_api.error_text(err)
                if kaggle_api.http_status(err) in (400, 403, 409) and (BUSY.search(text) or QUOTA.search(text)):
                    return None, text
                raise

        result, refusal = self._call(push, f"pushing the kernel {ref}")
        refusal = refusal or (result.error if result is not None else "") or ""
        if refusal or result is None or not result.version_number:
            group["pushing"] = None
            self._save()
            return self._refused(ref, refusal, result)
        group.update(version=result.version_number, last_version=result.version_number, pushing=None,
                     status="queued", pushed_at=time.time(), ended_at=None, url=result.url)
        self._save()
        say(f"kernel {ref}: pushed version {result.version_number} (folds {folds}) on "
            f"{ACCELERATORS[self.plan.accelerator][0]}: {result.url}")
        self.report.add(f"kernel {ref}: version {result.version_number} pushed for folds {folds}")
        return True

    def _refused(self, ref: str, refusal: str, result: Any) -> bool:
        invalid = list(getattr(result, "invalid_dataset_sources", []) or []) + list(
            getattr(result, "invalid_competition_sources", []) or [])
        if invalid:
            raise KitError(f"Kaggle did not take the kernel {ref}: invalid sources {invalid}; accept the competition "
                           f"rules at {kaggle_api.RULES_URL} and check the dataset {self.plan.dataset_ref}")
        if QUOTA.search(refusal):
            raise KitError(kaggle_api.scrub(f"Kaggle refused the kernel {ref} for quota: {refusal}; {self._quota()}; "
                                            "run kit kaggle train again when it renews (nothing is lost)", self.creds))
        if BUSY.search(refusal):
            if self._active():
                say(f"kernel {ref}: Kaggle has no free {self.plan.accelerator} session now ({refusal}); pushing it "
                    "when one of this run's kernels ends")
                return False
            raise KitError(kaggle_api.scrub(
                f"Kaggle refused the kernel {ref}: {refusal}; other notebooks hold your {self.plan.accelerator} "
                "sessions: stop them or wait, then run kit kaggle train again (nothing is lost)", self.creds))
        raise KitError(kaggle_api.scrub(f"Kaggle did not take the kernel {ref}: {refusal or 'no version given'}",
                                        self.creds))

    def _quota(self) -> str:
        try:
            used = self._call(lambda: kaggle_api.quota(self.api), "reading your accelerator quota")
        except KitError:
            return "the quota could not be read"
        name = ACCELERATORS[self.plan.accelerator][1]
        if name not in used:
            return "the quota could not be read"
        return f"{name.upper()} quota: {used[name][0]:.1f} of {used[name][1]:.0f} h used this week"

    # -- polling and downloading ----------------------------------------------------------------------------

    def poll_active(self) -> None:
        for slug, group in self.groups.items():
            if group["version"] and group["status"] in ACTIVE + ("complete",):
                self._poll(slug, group)

    def _poll(self, slug: str, group: dict) -> None:
        ref, version = f"{self.plan.owner}/{slug}", group["version"]
        if group["status"] != "complete":
            result = self._call(lambda: kaggle_api.session_status(self.api, ref, version),
                                f"checking the kernel {ref} version {version}")
            status = result.status.name.lower()
            if status != group["status"]:
                say(f"kernel {ref} version {version}: {status} ({_ago(time.time() - group['pushed_at'])} since "
                    "the push)")
                group["status"] = status
                if status not in ACTIVE:
                    group["ended_at"] = time.time()
                self._save()
            if status in ACTIVE:
                return
            if status != "complete":
                group["failure"] = result.failure_message or status
        self._download(ref, group)

    def _download(self, ref: str, group: dict) -> None:
        """Every file of every fold the kernel finished (even a failed one: a session out of time keeps them)."""
        version = group["version"]
        files, log = self._call(lambda: kaggle_api.session_output(self.api, ref, version),
                                f"listing the output of {ref} version {version}")
        urls = dict(files)
        manifest = None
        if MANIFEST in urls:
            manifest = json.loads(download_bytes(urls[MANIFEST], f"{ref} version {version}: {MANIFEST}"))
        wanted = wanted_files(manifest, group["folds"]) if manifest else []
        for name, meta in wanted:
            target = self.plan.run_dir / target_path(name)
            if group["files"].get(name) == meta["sha256"] and target.is_file() \
                    and target.stat().st_size == meta["size"]:
                continue  # verified before: never downloaded twice
            if name not in urls:
                raise KitError(f"kernel {ref} version {version}: {name} is in its manifest but not in its output; "
                               f"run kit kaggle train --resume {self.plan.run_dir} to train those folds again")
            download_file(urls[name], target, meta["size"], meta["sha256"])
            group["files"][name] = meta["sha256"]
            self._save()
        done = manifest["folds_done"] if manifest else []
        self.new_folds += len(done)
        missing = remaining_folds(self.plan, group)  # neither downloaded now nor finished here before
        if group["status"] == "complete" and not missing:
            group["status"] = "done"
            self.report.add(f"kernel {ref} version {version}: folds {done} downloaded into {self.plan.run_dir}")
        else:
            reason = group["failure"] or f"it ended without folds {missing}"
            tail = kaggle_api.log_tail(log)
            group["status"] = "error" if group["status"] != "cancel_acknowledged" else "cancelled"
            text = (f"kernel {ref} version {version} ended in {group['status']} ({reason}); folds {done or 'none'} "
                    f"kept; see its log at {kaggle_api.log_url(group['url'] or '')}")
            text += ("; it ends: " + " | ".join(tail)) if tail else ""
            self.failures.append(kaggle_api.scrub(text, self.creds))
        self._save()

    def finish(self) -> None:
        from kit.cv import summarize
        from kit.report import report_or_warn

        finished = sorted(int(p.parent.name[4:]) for p in self.plan.run_dir.glob("fold*/metrics.json"))
        for slug, group in self.groups.items():
            if group["status"] in ACTIVE + ("waiting",):
                state = "waiting for a free session" if group["status"] == "waiting" else \
                    f"version {group['version']} {group['status']}"
                self.report.add(f"kernel {self.plan.owner}/{slug} (folds {group['folds']}): {state}; run kit kaggle "
                                f"train --resume {self.plan.run_dir} again to continue (it resumes here)")
        if finished and self.new_folds:
            self.report.add(str(summarize(self.plan.run_dir)))
            report_or_warn(self.plan.run_dir)
        if self.failures:
            for line in self.failures[:-1]:
                say(f"Error: {line}")
            raise KitError(self.failures[-1] + f"; run kit kaggle train --resume {self.plan.run_dir} to push the "
                           "unfinished folds again")


def wanted_files(manifest: dict, folds: list[int]) -> list[tuple[str, dict]]:
    """The manifest's files a local run needs: folds.csv and each finished fold's files, each fold's metrics.json
    last (it marks a finished fold, so it lands only after the weights and predictions); names are checked."""
    done = {f"fold{k}" for k in manifest.get("folds_done", []) if k in folds}
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


# ---- status and cancel --------------------------------------------------------------------------------------

def plan_from_state(run_dir: Path, owner: str) -> Plan:
    """The plan a run was started with (its config.json and state), for --resume, status and cancel."""
    state = load_state(run_dir)
    if not state.get("groups"):
        raise KitError(f"{state_path(run_dir)}: missing; start Kaggle training with kit kaggle train --out {run_dir}")
    cfg = config_mod.load(Path(run_dir) / "config.json")
    groups = tuple(tuple(g["folds"]) for g in state["groups"].values())
    plan = Plan(Path(run_dir), owner, cfg, state["n_folds"], groups, state["accelerator"], state["backend"],
                state["parallel"], wheel.build())
    if plan.tag != state["tag"]:
        raise KitError(f"{run_dir}/config.json changed since its kernels were pushed: put it back, or start a new run")
    return plan


def status(run_dir: Path) -> Report:
    """Each kernel of the run: its folds, state and time since the push (live for running ones), and the quota."""
    state = load_state(run_dir)
    if not state.get("groups"):
        raise KitError(f"{state_path(run_dir)}: missing; start Kaggle training with kit kaggle train --out {run_dir}")
    creds = kaggle_api.require_credentials()
    api = kaggle_api.client(creds)
    owner = api.config_values["username"]
    report = Report()
    for slug, group in state["groups"].items():
        ref = f"{owner}/{slug}"
        if group["version"] and group["status"] in ACTIVE:
            result = kaggle_api.call(lambda: kaggle_api.session_status(api, ref, group["version"]),
                                     f"checking the kernel {ref}", creds)
            group["status"] = result.status.name.lower()
            if group["status"] not in ACTIVE:
                group["ended_at"] = group["ended_at"] or time.time()
        elapsed = ""
        if group["pushed_at"]:
            elapsed = f", {_ago((group['ended_at'] or time.time()) - group['pushed_at'])}"
        shown = {"done": "downloaded", "complete": "finished, not yet downloaded"}.get(group["status"],
                                                                                     group["status"])
        version = f" version {group['version']}" if group["version"] else ""
        report.add(f"folds {group['folds']}: {shown}{elapsed} (kernel {ref}{version})")
    save_state(run_dir, state)
    try:
        used = kaggle_api.call(lambda: kaggle_api.quota(api), "reading your accelerator quota", creds)
        report.add("quota this week: " + ", ".join(f"{name.upper()} {u:.1f} of {a:.0f} h used, {a - u:.1f} h left"
                                                   for name, (u, a) in used.items()))
    except KitError as err:
        report.add(f"quota: not readable ({err})")
    return report


def cancel(run_dir: Path) -> Report:
    """Delete the run's queued and running kernels (deleting is what stops a Kaggle session), saying which first."""
    state = load_state(run_dir)
    if not state.get("groups"):
        raise KitError(f"{state_path(run_dir)}: missing; nothing of {run_dir} runs on Kaggle")
    creds = kaggle_api.require_credentials()
    api = kaggle_api.client(creds)
    owner = api.config_values["username"]
    report = Report()
    for slug, group in state["groups"].items():
        ref = f"{owner}/{slug}"
        if not (group["version"] and group["status"] in ACTIVE):
            continue
        result = kaggle_api.call(lambda: kaggle_api.session_status(api, ref, group["version"]),
                                 f"checking the kernel {ref}", creds)
        live = result.status.name.lower()
        if live not in ACTIVE:
            group["status"] = live
            report.add(f"kernel {ref} version {group['version']} (folds {group['folds']}): already {live}")
            continue
        say(f"deleting kernel {ref} version {group['version']} (folds {group['folds']}, {live} for "
            f"{_ago(time.time() - group['pushed_at'])})")
        kaggle_api.call(lambda: kaggle_api.delete_kernel(api, ref), f"deleting the kernel {ref}", creds)
        group.update(status="cancelled", ended_at=time.time(), failure="cancelled with kit kaggle cancel")
        save_state(run_dir, state)
        report.add(f"kernel {ref} (folds {group['folds']}): deleted, its session stopped")
    save_state(run_dir, state)
    if not report.lines:
        report.add(f"nothing of {run_dir} is queued or running on Kaggle")
    else:
        report.add(f"kit kaggle train --resume {run_dir} pushes the cancelled folds again")
    return report
