"""kit submit: from an exported model.tflite to a scored asl-signs submission, through the real Kaggle client.

asl-signs is a code competition: what gets scored is the `submission.zip` a notebook version writes. So:
(1) model.tflite goes up as a private dataset (created, or a new version), (2) the kernel in kernels/ is rendered
with that dataset and the competition as sources and pushed, (3) its run is polled until it completes (the kernel
checks the model against the contract itself), (4) that kernel version is submitted with competition_submit_code,
(5) the submission is polled until Kaggle has scored it.

Progress is kept in `submit_state.json` beside the model (no secret in it): a re-run after any failure continues
with the step that failed, and a re-run after success makes no new upload, push or submission.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.kaggle import api as kaggle_api
from kit.errors import BadFile, KitError
from kit.kaggle.api import COMPETITION, RULES_URL
from kit.progress import say

DATASET_SLUG = "asl-signs-kit-model"  # one private dataset per user; each new model is a new version
KERNEL_SLUG = "asl-signs-kit-submission"  # one kernel per user; each submission is one of its versions
DATASET_TITLE = "asl-signs kit model"
KERNEL_SOURCE = Path(__file__).resolve().parents[2] / "kernels"
STATE_FILE = "submit_state.json"
MODEL_FILE = "model.tflite"
SUBMISSION_FILE = "submission.zip"  # the kernel's output file that the competition scores
MAX_MODEL_BYTES = 40 * 1024 * 1024  # the competition's limit
SHA_LINE = "EXPECTED_SHA256 = None"  # the line of kernels/submission.py that rendering fills in
OFFLINE_OWNER = "your-kaggle-username"  # --dry-run without a username in the credentials
SUBMIT_403 = f"Kaggle refused (HTTP 403): accept the competition rules at {RULES_URL}, then run kit submit again"


@dataclass(frozen=True)
class Plan:
    """Everything known before the first network call."""

    workdir: Path  # holds submit_state.json and the rendered kaggle/ folder
    model: Path  # the model.tflite inside the rendered dataset folder
    sha256: str
    owner: str
    message: str

    @property
    def dataset_dir(self) -> Path:
        return self.workdir / "kaggle" / "dataset"

    @property
    def kernel_dir(self) -> Path:
        return self.workdir / "kaggle" / "kernel"

    @property
    def dataset_ref(self) -> str:
        return f"{self.owner}/{DATASET_SLUG}"

    @property
    def kernel_ref(self) -> str:
        return f"{self.owner}/{KERNEL_SLUG}"


@dataclass
class SubmitReport:
    lines: list[str] = field(default_factory=list)
    public_score: str | None = None

    def add(self, line: str) -> None:
        self.lines.append(line)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def resolve_target(target: Path) -> tuple[Path, Path]:
    """(work folder, model source): RUN_DIR uses RUN_DIR/export/; a submission.zip or model.tflite is used as is."""
    if target.is_dir():
        export = target / "export" if (target / "export").is_dir() else target
        for name in (MODEL_FILE, SUBMISSION_FILE):
            if (export / name).is_file():
                return export, export / name
        raise KitError(f"{target}: no export/{MODEL_FILE} or export/{SUBMISSION_FILE}: run kit export {target} first")
    if target.is_file() and target.suffix in (".zip", ".tflite"):
        return target.parent, target
    raise KitError(f"{target}: expected a run folder, a {SUBMISSION_FILE} or a {MODEL_FILE}")


def model_bytes(source: Path) -> bytes:
    """The model.tflite bytes, from the file or from a submission.zip holding exactly it; checked cheaply."""
    if source.suffix == ".zip":
        try:
            with zipfile.ZipFile(source) as zf:
                if zf.namelist() != [MODEL_FILE]:
                    raise BadFile(source, f"holds {zf.namelist()}; a submission holds exactly {MODEL_FILE}")
                data = zf.read(MODEL_FILE)
        except zipfile.BadZipFile as err:
            raise BadFile(source, f"not a zip archive ({err}): run kit export again") from None
    else:
        data = source.read_bytes()
    if data[4:8] != b"TFL3":
        raise BadFile(source, "not a TFLite model (no TFL3 identifier): run kit export again")
    if len(data) > MAX_MODEL_BYTES:
        raise BadFile(source, f"{len(data) / 2**20:.1f} MB: the competition allows 40 MB")
    return data


def check_competition_vocabulary(source: Path, data: bytes) -> None:
    """Refuse a model of your own vocabulary (kit/data/vocabulary.py): its outputs are not the competition's 250 signs
    in the competition's order, so Kaggle would score it as wrong on every sequence."""
    from kit.contract import tflite
    from kit.data import vocabulary
    from kit.data.landmarks import N_CLASSES, SIGN_MAP_NAME

    beside = source.parent / SIGN_MAP_NAME
    n = tflite.n_outputs(tflite.interpreter(data))
    signs = vocabulary.read_map(beside) if beside.is_file() else None
    if n == N_CLASSES and (signs is None or vocabulary.is_competition(signs)):
        return
    raise KitError(f"{source}: own vocabulary ({n if signs is None else len(signs)} signs), not a competition "
                   "submission: kit submit sends only models of the competition's 250 signs (kit predict runs this one)")


def _write_if_changed(path: Path, data: bytes) -> None:
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def render_dataset(plan: Plan, data: bytes) -> None:
    """The dataset folder the client uploads: model.tflite and dataset-metadata.json, nothing else."""
    meta = {"title": DATASET_TITLE, "id": plan.dataset_ref, "licenses": [{"name": "CC0-1.0"}]}
    _write_if_changed(plan.dataset_dir / "dataset-metadata.json", json.dumps(meta, indent=2).encode())
    _write_if_changed(plan.model, data)


def render_kernel(kernel_dir: Path, owner: str, sha256: str, source: Path = KERNEL_SOURCE) -> None:
    """kernels/ rendered for `owner`: the metadata template filled in, the script told which model it must find."""
    if not (source / "submission.py").is_file():
        raise KitError(f"{source}: the kernel source is missing; kit submit needs the kernels/ folder of the kit")
    script = (source / "submission.py").read_text()
    lines = script.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(SHA_LINE)]
    if len(hits) != 1:
        raise KitError(f"{source / 'submission.py'}: expected one line starting {SHA_LINE!r}, found {len(hits)}")
    lines[hits[0]] = f'EXPECTED_SHA256 = "{sha256}"  # the model this kernel version was pushed for\n'
    values = {"owner": owner, "kernel_slug": KERNEL_SLUG, "dataset_slug": DATASET_SLUG, "competition": COMPETITION}
    template = json.loads((source / "kernel-metadata.json").read_text())
    meta = {k: ([v.format(**values) for v in val] if isinstance(val, list) else
                val.format(**values) if isinstance(val, str) else val) for k, val in template.items()}
    _write_if_changed(kernel_dir / "submission.py", "".join(lines).encode())
    _write_if_changed(kernel_dir / "kernel-metadata.json", json.dumps(meta, indent=2).encode())


def load_state(workdir: Path, sha256: str) -> dict:
    """Progress for this model; progress recorded for another model does not count."""
    path = workdir / STATE_FILE
    state = json.loads(path.read_text()) if path.is_file() else {}
    return state if state.get("model_sha256") == sha256 else {"model_sha256": sha256}


def save_state(workdir: Path, state: dict) -> None:
    tmp = workdir / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, workdir / STATE_FILE)


def judge(target: Path | None, force: bool | None) -> tuple[Path, list[str]]:
    """The target to submit (with no target: the best exported run by CV) and the lines that say what it is worth.
    A partial or below-chance run is refused unless `force`; a dry run (`force=None`) only says it would be."""
    from kit.contract.quality import best_export, run_of, run_quality

    lines = []
    if target is None:
        target, picked = best_export()
        lines.append(picked)
    workdir, _ = resolve_target(target)
    run = run_of(workdir)
    if run is None:
        return target, lines + [f"{target}: no run beside it, so no CV to judge it by"]
    quality = run_quality(run)
    lines.append(str(quality))
    if quality.problems and not force:
        fix = f"finish it ({quality.finish})" if quality.finish and quality.folds_finished < (
            quality.folds_planned or 0) else "train it longer or on more data"
        refusal = f"{run}: {'; '.join(quality.problems)}: {fix}, or submit it anyway with --force"
        if force is not None:
            raise KitError(refusal)
        lines.append(f"without --force, kit submit refuses it: {refusal}")
    return target, lines


def plan_submission(target: Path, message: str | None, owner: str) -> tuple[Plan, bytes]:
    workdir, source = resolve_target(target)
    data = model_bytes(source)
    check_competition_vocabulary(source, data)
    sha = hashlib.sha256(data).hexdigest()
    name = workdir.parent.name if workdir.name == "export" else workdir.name
    plan = Plan(workdir, workdir / "kaggle" / "dataset" / MODEL_FILE, sha, owner, message or f"kit: {name}")
    return plan, data


def submit(
    target: Path | None,
    message: str | None = None,
    *,
    dry_run: bool = False,
    wait: bool = True,
    poll_seconds: float = 15.0,
    max_wait_seconds: float = 4 * 3600.0,
    force: bool = False,
) -> SubmitReport:
    """Upload, push, run, submit and score; see the module docstring. `dry_run` renders and lists, offline.
    `target` None submits the best exported run under runs/; a partial or below-chance run needs `force`."""
    if dry_run:
        return _dry_run(target, message, force)
    target, judged = judge(target, force)
    for line in judged:
        say(line)
    creds = kaggle_api.require_credentials()
    api = kaggle_api.client(creds)
    plan, data = plan_submission(target, message, api.config_values["username"])
    render_dataset(plan, data)
    render_kernel(plan.kernel_dir, plan.owner, plan.sha256)
    run = _Submission(api, creds, plan, wait, poll_seconds, max_wait_seconds)
    run.go()
    return run.report


def _dry_run(target: Path | None, message: str | None, force: bool = False) -> SubmitReport:
    creds = kaggle_api.find_credentials()
    owner = creds.username if creds and creds.username else OFFLINE_OWNER
    target, judged = judge(target, True if force else None)
    plan, data = plan_submission(target, message, owner)
    render_dataset(plan, data)
    render_kernel(plan.kernel_dir, plan.owner, plan.sha256)
    state = load_state(plan.workdir, plan.sha256)
    report = SubmitReport()
    report.lines += [
        f"dry run: nothing sent; rendered {plan.workdir / 'kaggle'}",
        *judged,
        f"credentials: {creds.source}" if creds else kaggle_api.no_credentials_message(),
        f"1. dataset {plan.dataset_ref} (private): {plan.model.name}, {len(data):,} bytes, sha256 {plan.sha256[:12]}"
        + (" (already uploaded)" if state.get("dataset_uploaded") else ""),
        f"2. kernel {plan.kernel_ref}: push {plan.kernel_dir} (submission.py, kernel-metadata.json) with sources "
        f"{plan.dataset_ref} and competition {COMPETITION}"
        + (f" (version {state['kernel_version']} pushed)" if state.get("kernel_version") else ""),
        "3. wait for the kernel run to write submission.zip",
        f"4. competition_submit_code({COMPETITION}, kernel {plan.kernel_ref}, file {SUBMISSION_FILE}, "
        f"message {plan.message!r})",
        "5. wait for the public score",
    ]
    return report


class _Submission:
    """The five steps, each skipped when the state says it is done for this model."""

    def __init__(self, api: Any, creds: kaggle_api.Credentials, plan: Plan, wait: bool, poll: float, limit: float):
        self.api, self.creds, self.plan = api, creds, plan
        self.wait, self.poll, self.limit = wait, poll, limit
        self.state = load_state(plan.workdir, plan.sha256)
        self.report = SubmitReport()

    def _call(self, fn: Callable[[], Any], doing: str, on_403: str | None = None) -> Any:
        return kaggle_api.call(fn, doing, self.creds, on_403=on_403)

    def _save(self, **changes: Any) -> None:
        self.state.update(changes)
        save_state(self.plan.workdir, self.state)

    def _until(self, check: Callable[[], tuple[bool, str, Any]], what: str) -> tuple[bool, Any]:
        """Poll `check` -> (done, status, value) until done; (False, value) when not waiting or out of time."""
        deadline, last = time.monotonic() + self.limit, None
        while True:
            done, status, value = check()
            if done or not self.wait or time.monotonic() > deadline:
                return done, value
            if status != last:
                say(f"{what}: {status}")
                last = status
            time.sleep(self.poll)

    def _later(self, what: str) -> None:
        self.report.add(f"{what}; run kit submit {self.plan.workdir} again to continue (it resumes here)")

    def go(self) -> None:
        for step in (self.dataset, self.dataset_ready, self.kernel, self.kernel_run, self.submission, self.score):
            if not step():
                return

    def dataset(self) -> bool:
        ref = self.plan.dataset_ref
        if self.state.get("dataset_uploaded"):
            self.report.add(f"dataset {ref}: already holds this model")
            return True
        exists = kaggle_api.dataset_exists(self.api, ref, self.creds)
        say(f"dataset {ref}: uploading {MODEL_FILE} ({self.plan.model.stat().st_size / 2**20:.1f} MB)")
        kaggle_api.upload_dataset(self.api, self.creds, str(self.plan.dataset_dir), ref, exists,
                                  f"model {self.plan.sha256[:12]}")
        self._save(dataset_uploaded=True, dataset_ready=False)
        self.report.add(f"dataset {ref}: {'new version' if exists else 'created (private)'} with {MODEL_FILE}")
        time.sleep(self.poll)  # let Kaggle start processing the new version before asking whether it is ready
        return True

    def dataset_ready(self) -> bool:
        if self.state.get("dataset_ready"):
            return True
        ref = self.plan.dataset_ref

        def check():
            status = kaggle_api.dataset_status(self.api, ref, self.creds) or "not found"
            if status == "failed":
                self._save(dataset_uploaded=False)
                raise KitError(f"Kaggle failed to process the dataset {ref}: run kit submit again to upload it anew")
            return status == "ready", status, status

        done, status = self._until(check, f"dataset {ref}")
        if not done:
            self._later(f"dataset {ref} is still processing ({status})")
            return False
        self._save(dataset_ready=True)
        return True

    def kernel(self) -> bool:
        ref = self.plan.kernel_ref
        if self.state.get("kernel_version"):
            self.report.add(f"kernel {ref}: version {self.state['kernel_version']} already pushed for this model")
            return True
        result = self._call(lambda: self.api.kernels_push(str(self.plan.kernel_dir)), f"pushing the kernel {ref}")
        invalid = list(result.invalid_dataset_sources) + list(result.invalid_competition_sources)
        if result.error or invalid or not result.version_number:
            raise KitError(f"Kaggle did not take the kernel {ref}: {result.error or f'invalid sources {invalid}'}")
        self._save(kernel_version=result.version_number, kernel_url=result.url, kernel_status="pushed")
        self.report.add(f"kernel {ref}: pushed version {result.version_number} ({result.url})")
        say(f"kernel {ref}: pushed version {result.version_number}; it runs on Kaggle now: {result.url}")
        time.sleep(self.poll)  # let Kaggle queue the new run before asking for its status
        return True

    def kernel_run(self) -> bool:
        if self.state.get("kernel_status") == "complete":
            return True
        ref, version = self.plan.kernel_ref, self.state["kernel_version"]

        def check():
            result = self._call(lambda: self.api.kernels_status(ref), f"checking the kernel {ref}")
            status = result.status.name.lower()
            return status in ("complete", "error", "cancel_acknowledged"), status, result

        done, result = self._until(check, f"kernel {ref} version {version}")
        status = result.status.name.lower()
        if not done:
            self._later(f"kernel {ref} version {version} is {status}")
            return False
        if status != "complete":
            self._save(kernel_version=None, kernel_status=status)  # a re-run pushes a fresh version
            raise KitError(self._kernel_failure(version, status, result.failure_message))
        self._save(kernel_status="complete")
        self.report.add(f"kernel {ref}: version {version} wrote {SUBMISSION_FILE}")
        return True

    def _kernel_failure(self, version: int, status: str, message: str | None) -> str:
        ref, url = self.plan.kernel_ref, kaggle_api.log_url(self.state.get("kernel_url") or "")
        text = f"kernel {ref} version {version} ended in {status}"
        text += f" ({message})" if message else ""
        text += f": see its log at {url}"
        try:
            tail = kaggle_api.log_tail(self._call(lambda: self.api.kernels_logs(ref), f"reading the log of {ref}"))
        except KitError as err:
            tail = [f"(the log could not be read: {err})"]
        if tail:
            text += "; it ends: " + " | ".join(tail)
        return kaggle_api.scrub(text, self.creds)

    def submission(self) -> bool:
        version = self.state["kernel_version"]
        if self.state.get("submission_ref"):
            return True
        tag = f"[kit {self.plan.sha256[:12]} v{version}]"  # finds our submission again after a crash
        found = [s for s in self._submissions() if tag in (s.description or "") and s.status.name != "ERROR"]
        if found:
            ref = found[0].ref
        else:
            result = self._call(
                lambda: self.api.competition_submit_code(
                    SUBMISSION_FILE, f"{self.plan.message} {tag}", COMPETITION,
                    kernel=self.plan.kernel_ref, kernel_version=version, quiet=True,
                ),
                f"submitting {self.plan.kernel_ref} version {version} to {COMPETITION}",
                on_403=SUBMIT_403,
            )
            if not result.ref:
                raise KitError(f"Kaggle did not take the submission: {result.message or 'no reason given'}")
            ref = result.ref
        self._save(submission_ref=ref)
        self.report.add(f"submission {ref}: {self.plan.kernel_ref} version {version} submitted to {COMPETITION}")
        return True

    def _submissions(self) -> list:
        return self._call(lambda: self.api.competition_submissions(COMPETITION), "listing your submissions") or []

    def score(self) -> bool:
        ref = self.state["submission_ref"]
        if self.state.get("public_score") is None:
            def check():
                mine = [s for s in self._submissions() if s.ref == ref]
                status = mine[0].status.name.lower() if mine else "not listed yet"
                return status in ("complete", "error"), status, mine[0] if mine else None

            done, sub = self._until(check, f"submission {ref}")
            if not done:
                self._later(f"submission {ref} is being scored")
                return False
            if sub.status.name.lower() == "error":
                self._save(submission_ref=None)
                raise KitError(f"submission {ref} failed on Kaggle: {sub.error_description or 'no reason given'}")
            self._save(public_score=sub.public_score)
        self.report.public_score = self.state["public_score"]
        self.report.add(f"public score: {self.report.public_score} (submission {ref})")
        return True
