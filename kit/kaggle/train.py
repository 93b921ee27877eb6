"""kit kaggle train: the folds trained in Kaggle kernels on T4 x2 or TPU v5e-8, pulled back into a local run.

(1) The running kit goes up as a wheel in a private dataset (a new version only when the code changed: the wheel's
name carries a hash of its contents). (2) kernels/train.py is rendered once per group of folds, with the job (the
wheel and its sha256, the resolved config, the folds, the backend) written into it, the competition and the dataset
attached, the accelerator set by `machine_shape` and internet on. (3) Kernels are pushed while fewer than
`--parallel` of them run, and (4) each is polled by its own version. (5) A finished kernel's output files are
streamed to temporary files, checked against the kernel's manifest (size and sha256) and only then renamed into
RUN/fold{K}/, so that `kit cv`, `kit export` and `kit submit` take the run as if it had trained here.

`--full` does the same for final fits on every signer (kit train --full --member K in each kernel), into
RUN/full{S}/, with its progress in RUN/kaggle/full/state.json.

Progress is kept in RUN/kaggle/state.json (no secret in it). A re-run after any failure or kill goes on from there:
a pushed kernel is never pushed again while it may still run (a kill between push and the state file is caught by
asking Kaggle for the kernel's newest version), a verified file is never downloaded again, and a kernel that failed
or was cancelled is pushed again for the folds it did not finish.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.kaggle import api as kaggle_api
from kit.errors import KitError
from kit.kaggle.output import MANIFEST, download_bytes, download_file, target_path, wanted_files
from kit.kaggle.plan import (ACCELERATORS, KINDS, Plan, check_run_config, init_state, load_state, remaining_folds,
                             render_dataset, render_kernel, save_state, state_path)
from kit.progress import say
from kit.runlock import holder, writing

ACTIVE = ("queued", "running", "new_script", "cancel_requested")  # a session that may still train
BUSY = re.compile(r"maximum .*session|too many .*session|concurrent", re.I)  # Kaggle's "no free session"
QUOTA = re.compile(r"quota", re.I)


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
    with writing(plan.run_dir, "kit kaggle train", "run"):  # one follower per run: never two pushing its kernels
        check_run_config(plan, write=False)  # written with the state below, once the credentials are known to exist
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
        check_run_config(plan)
        save_state(plan.state_path, state)
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
    report.add(f"credentials: {creds.source}" if creds else kaggle_api.no_credentials_message())
    report.add(f"1. dataset {plan.dataset_ref} (private): {plan.kit_wheel.name}, {len(plan.kit_wheel.data):,} bytes"
               + (" (already uploaded)" if state.get("wheel") == plan.kit_wheel.name else ""))
    for n, (slug, group) in enumerate(state["groups"].items(), start=2):
        todo = remaining_folds(plan, group)
        what = (f"{plan.label(todo)} to train" if todo else "all downloaded") + (
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
        save_state(self.plan.state_path, self.state)

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
            if self.state.get("wheel") != name and name not in kaggle_api.dataset_files(self.api, ref, self.creds):
                self._upload(ref, name)
            self.state.update(wheel=name, dataset_ready=False)
            self._save()
            self._wait_ready(ref)
        self.report.add(f"dataset {ref}: holds {name}")

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
        ref = f"{self.plan.owner}/{slug}"
        version = kaggle_api.newest_version(self.api, ref, self.creds)
        if version and version > (group["pushing"].get("after") or 0):
            group.update(version=version, status="queued", pushed_at=group["pushing"]["at"], ended_at=None,
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
        say(f"kernel {ref}: pushed version {result.version_number} ({self.plan.label(folds)}) on "
            f"{ACCELERATORS[self.plan.accelerator][0]}: {result.url}")
        self.report.add(f"kernel {ref}: version {result.version_number} pushed for {self.plan.label(folds)}")
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
            before = group["status"]
            status = _live(self.api, self.creds, ref, group)
            if status != before:
                say(f"kernel {ref} version {version}: {status} ({_ago(time.time() - group['pushed_at'])} since "
                    "the push)")
                self._save()
            if status in ACTIVE:
                return
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
        wanted = wanted_files(manifest, group["folds"], self.plan.kind) if manifest else []
        for name, meta in wanted:
            target = self.plan.run_dir / target_path(name)
            if group["files"].get(name) == meta["sha256"] and target.is_file() \
                    and target.stat().st_size == meta["size"]:
                continue  # verified before: never downloaded twice
            if name not in urls:
                raise KitError(f"kernel {ref} version {version}: {name} is in its manifest but not in its output; "
                               f"run {self._resume} to train those again")
            download_file(urls[name], target, meta["size"], meta["sha256"])
            group["files"][name] = meta["sha256"]
            self._save()
        done = manifest["folds_done"] if manifest else []
        self.new_folds += len(done)
        missing = remaining_folds(self.plan, group)  # neither downloaded now nor finished here before
        if group["status"] == "complete" and not missing:
            group["status"] = "done"
            self.report.add(f"kernel {ref} version {version}: {self.plan.label(done)} downloaded into "
                            f"{self.plan.run_dir}")
        else:
            reason = group["failure"] or f"it ended without {self.plan.label(missing)}"
            tail = kaggle_api.log_tail(log)
            group["status"] = "error" if group["status"] != "cancel_acknowledged" else "cancelled"
            text = (f"kernel {ref} version {version} ended in {group['status']} ({reason}); "
                    f"{self.plan.label(done) if done else 'nothing'} kept; see its log at "
                    f"{kaggle_api.log_url(group['url'] or '')}")
            text += ("; it ends: " + " | ".join(tail)) if tail else ""
            self.failures.append(kaggle_api.scrub(text, self.creds))
        self._save()

    def finish(self) -> None:
        from kit.training.cv import summarize
        from kit.seeing.report import report_or_warn

        finished = sorted(int(p.parent.name[4:]) for p in self.plan.run_dir.glob("fold*/metrics.json"))
        for slug, group in self.groups.items():
            if group["status"] in ACTIVE + ("waiting",):
                state = "waiting for a free session" if group["status"] == "waiting" else \
                    f"version {group['version']} {group['status']}"
                self.report.add(f"kernel {self.plan.owner}/{slug} ({self.plan.label(group['folds'])}): {state}; "
                                f"run {self._resume} again to continue (it resumes here)")
        if self.new_folds and self.plan.kind == "full":
            fits = sorted(int(p.parent.name[4:]) for p in self.plan.run_dir.glob("full*/metrics.json"))
            self.report.add(f"{self.plan.label(fits)} on every signer in {self.plan.run_dir}, "
                            f"{self.plan.cfg.train.epochs} epochs each: kit export {self.plan.run_dir} ensembles "
                            "them (it prefers full fits)")
            report_or_warn(self.plan.run_dir)
        elif finished and self.new_folds:
            self.report.add(str(summarize(self.plan.run_dir)))
            report_or_warn(self.plan.run_dir)
        if self.failures:
            for line in self.failures[:-1]:
                say(f"Error: {line}")
            raise KitError(self.failures[-1] + f"; run {self._resume} to push the unfinished ones again")

    @property
    def _resume(self) -> str:
        return f"kit kaggle train --resume {self.plan.run_dir}" + (" --full" if self.plan.kind == "full" else "")


# ---- status and cancel --------------------------------------------------------------------------------------

def _open(run_dir: Path) -> tuple[list[tuple[Path, dict]], Any, kaggle_api.Credentials, str]:
    """([(state file, state)] of the run's folds and full fits, signed-in client, credentials, owner)."""
    states = [(path, load_state(path)) for path in (state_path(run_dir, "fold"), state_path(run_dir, "full"))]
    states = [(path, state) for path, state in states if state.get("groups")]
    if not states:
        raise KitError(f"{state_path(run_dir)}: missing; start Kaggle training with kit kaggle train --out {run_dir}")
    creds = kaggle_api.require_credentials()
    api = kaggle_api.client(creds)
    return states, api, creds, api.config_values["username"]


def _label(state: dict, group: dict) -> str:
    return f"{KINDS[state.get('kind', 'fold')]} {group['folds']}"


def _live(api: Any, creds: kaggle_api.Credentials, ref: str, group: dict) -> str:
    """A pushed kernel version's status now, recorded in `group`: with its end time once it stopped, and what
    Kaggle said of a failure."""
    version = group["version"]
    result = kaggle_api.call(lambda: kaggle_api.session_status(api, ref, version),
                             f"checking the kernel {ref} version {version}", creds)
    group["status"] = result.status.name.lower()
    if group["status"] not in ACTIVE:
        group["ended_at"] = group["ended_at"] or time.time()
    if group["status"] not in ACTIVE + ("complete",):
        group["failure"] = result.failure_message or group["status"]
    return group["status"]


def member_seconds(run_dir: Path, kind: str = "fold") -> float | None:
    """How long one fold (or full fit) took to train in this run: the median of the finished ones' metrics.json
    "seconds"; None before any came back."""
    import statistics

    seconds = []
    for path in Path(run_dir).glob(f"{kind}*/metrics.json"):
        try:
            seconds.append(float(json.loads(path.read_text())["seconds"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a metrics.json without a time (an older kit) says nothing about the pace
    return statistics.median(seconds) if seconds else None


def only_in_session(run_dir: Path, state: dict, group: dict) -> str | None:
    """What exists only inside a kernel's session, for status and cancel: None when nothing does.

    Kaggle hands a session's output over only once the session ends, so the folds a running kernel has finished
    are nowhere else until then, and deleting the kernel (kit kaggle cancel) loses them. How many are finished
    cannot be asked of Kaggle; it is estimated from the pace of this run's folds that came back."""
    kind = state.get("kind", "fold")
    missing = [k for k in group["folds"] if not (Path(run_dir) / f"{kind}{k}" / "metrics.json").is_file()]
    label = f"{KINDS[kind]} {missing}"
    if not missing or not group.get("version"):
        return None
    if group["status"] == "complete":
        return (f"{label} finished and exist only in that session's output until kit kaggle train --resume "
                f"{run_dir} downloads them (deleting the kernel loses them)")
    if group["status"] != "running":
        return None
    pace = member_seconds(run_dir, kind)
    elapsed = time.time() - (group.get("pushed_at") or time.time())
    if pace:
        likely = min(len(missing), int(elapsed // pace))
        guess = f"at this run's pace ({_ago(pace)} a {kind}) " + (
            f"about {likely} of them {'is' if likely == 1 else 'are'} finished" if likely else "none is finished yet")
    else:
        guess = "how many are finished is not known until it ends"
    return (f"{label} not back yet: any it finished exist only inside the running session until it ends ({guess}); "
            "deleting the kernel loses them")


def status(run_dir: Path) -> Report:
    """Each kernel of the run (folds and full fits): what it trains, its state and the time since its push (live
    for running ones), what exists only inside its session, and the week's quota."""
    states, api, creds, owner = _open(run_dir)
    report = Report()
    writer = holder(run_dir)  # kit kaggle train following the run: it keeps the state; this only reads it
    if writer:
        report.add(f"{run_dir} is being written by {writer}: the states below are live from Kaggle, not saved")
    for path, state in states:
        for slug, group in state["groups"].items():
            ref = f"{owner}/{slug}"
            if group["version"] and group["status"] in ACTIVE:
                _live(api, creds, ref, group)
            elapsed = ""
            if group["pushed_at"]:
                elapsed = f", {_ago((group['ended_at'] or time.time()) - group['pushed_at'])}"
            shown = {"done": "downloaded", "complete": "finished, not yet downloaded"}.get(group["status"],
                                                                                         group["status"])
            version = f" version {group['version']}" if group["version"] else ""
            report.add(f"{_label(state, group)}: {shown}{elapsed} (kernel {ref}{version})")
            inside = only_in_session(run_dir, state, group)
            if inside:
                report.add(f"  {inside}")
        if not writer:
            save_state(path, state)
    try:
        used = kaggle_api.call(lambda: kaggle_api.quota(api), "reading your accelerator quota", creds)
        report.add("quota this week: " + ", ".join(f"{name.upper()} {u:.1f} of {a:.0f} h used, {a - u:.1f} h left"
                                                   for name, (u, a) in used.items()))
    except KitError as err:
        report.add(f"quota: not readable ({err})")
    return report


def cancel(run_dir: Path, confirm: Callable[[str], bool] | None = None) -> Report:
    """Delete the run's queued and running kernels (deleting is what stops a Kaggle session).

    First the kernels to delete are listed, each with what only its session holds (the folds it finished are lost
    with it), and `confirm` is asked with that list (None: no question, as --yes). After each delete Kaggle is
    asked again: a session it still reports running (as kaggle-cli issue 937 saw after a delete) is said out loud.
    """
    with writing(run_dir, "kit kaggle cancel", "run"):  # kit kaggle train following it would push them again
        return _cancel(run_dir, confirm)


def _cancel(run_dir: Path, confirm: Callable[[str], bool] | None) -> Report:
    states, api, creds, owner = _open(run_dir)
    report = Report()
    doomed = []  # (state file, state, slug, group)
    for path, state in states:
        for slug, group in state["groups"].items():
            ref, what = f"{owner}/{slug}", _label(state, group)
            if not (group["version"] and group["status"] in ACTIVE):
                continue
            live = _live(api, creds, ref, group)
            if live not in ACTIVE:
                report.add(f"kernel {ref} version {group['version']} ({what}): already {live}")
                continue
            doomed.append((path, state, slug, group))
        save_state(path, state)
    if not doomed:
        if not report.lines:
            report.add(f"nothing of {run_dir} is queued or running on Kaggle")
        return report
    listing = ["to delete (which stops their sessions):"]
    for _, state, slug, group in doomed:
        listing.append(f"  kernel {owner}/{slug} version {group['version']} ({_label(state, group)}), "
                       f"{group['status']} for {_ago(time.time() - group['pushed_at'])}")
        inside = only_in_session(run_dir, state, group)
        listing += [f"    {inside}"] if inside else []
    if confirm is not None and not confirm("\n".join(listing)):
        report.add("nothing deleted")
        return report
    for path, state, slug, group in doomed:
        ref, what, version = f"{owner}/{slug}", _label(state, group), group["version"]
        say(f"deleting kernel {ref} version {version} ({what})")
        kaggle_api.call(lambda: kaggle_api.delete_kernel(api, ref), f"deleting the kernel {ref}", creds)
        # A deleted kernel's versions are gone: the next push of this slug starts again at version 1.
        group.update(status="cancelled", ended_at=time.time(), failure="cancelled with kit kaggle cancel",
                     last_version=0)
        save_state(path, state)
        after = kaggle_api.call(kaggle_api.unless_missing(lambda: kaggle_api.session_status(api, ref, version)),
                                f"checking the deleted kernel {ref}", creds)
        still = after.status.name.lower() if after is not None else None
        if still in ACTIVE:
            report.add(f"kernel {ref} ({what}): deleted, but Kaggle still reports version {version} {still}: its "
                       f"session may go on using your quota; check https://www.kaggle.com/code/{ref} and stop it "
                       "there (kit kaggle status shows it)")
        else:
            report.add(f"kernel {ref} ({what}): deleted, its session stopped (Kaggle reports it "
                       f"{still or 'gone'})")
    report.add(f"kit kaggle train --resume {run_dir} (add --full for full fits) pushes the cancelled ones again")
    return report
