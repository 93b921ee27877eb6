"""What kit kaggle train sends, decided before the first network call: the groups of folds (or of full fits on
every signer, `--full`), one kernel each; the kernel slugs; the wheel dataset folder and each kernel folder rendered
from kernels/train.py with its job; and the state file (no secret in it): RUN/kaggle/state.json for folds,
RUN/kaggle/full/state.json for full fits, so that a run's folds and its full fits each go their own way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kit import config as config_mod
from kit.kaggle import wheel
from kit.config import Config
from kit import runfiles
from kit.errors import KitError
from kit.kaggle.api import COMPETITION

DATASET_SLUG = "asl-signs-kit-wheel"  # one private dataset per user; each new kit is a new version
DATASET_TITLE = "asl-signs kit wheel"
KERNEL_TEMPLATE = Path(__file__).resolve().parents[2] / "kernels" / "train.py"
JOB_LINE = "JOB = None"  # the line of kernels/train.py that rendering fills in
OFFLINE_OWNER = "your-kaggle-username"
# --accelerator -> (machine_shape, quota name, default Keras backend). T4 x2 trains with the image's GPU TensorFlow
# (MirroredStrategy over both GPUs); the TPU v5e-8 image trains with JAX (Keras' data parallelism over 8 cores).
ACCELERATORS = {"t4": ("NvidiaTeslaT4", "gpu", "tensorflow"), "tpu": ("TpuV5E8", "tpu", "jax")}
MAX_PARALLEL = {"t4": 2, "tpu": 1}  # concurrent batch sessions Kaggle allows per accelerator
REPLICAS = {"t4": 2, "tpu": 8}  # devices a kernel's global batch splits over: 2 GPUs; 8 TPU cores (under JAX)
KINDS = {"fold": "folds", "full": "full fits"}  # what a kernel trains: RUN/fold{K} or RUN/full{S}, and its name


@dataclass(frozen=True)
class Plan:
    run_dir: Path
    owner: str
    cfg: Config
    n_folds: int  # folds: GroupKFold's fold count; full fits: the number of seeds
    groups: tuple[tuple[int, ...], ...]  # the fold (or full fit) numbers of each kernel
    accelerator: str
    backend: str
    parallel: int
    kit_wheel: wheel.Wheel = field(repr=False)
    kind: str = "fold"  # "fold" or "full"

    @property
    def kaggle_dir(self) -> Path:
        return self.run_dir / "kaggle" / ("full" if self.kind == "full" else "")

    @property
    def state_path(self) -> Path:
        return state_path(self.run_dir, self.kind)

    @property
    def dataset_dir(self) -> Path:
        return self.run_dir / "kaggle" / "dataset"

    @property
    def dataset_ref(self) -> str:
        return f"{self.owner}/{DATASET_SLUG}"

    @property
    def tag(self) -> str:
        """Six hex digits of the config, the kind and the count: a changed config never reuses a kernel."""
        text = json.dumps(self.cfg.to_dict(), sort_keys=True) + f"/{self.kind}/{self.n_folds}"
        return hashlib.sha256(text.encode()).hexdigest()[:6]

    def slug(self, folds: tuple[int, ...]) -> str:
        """kit-<run>-<tag>-<accelerator>-f<folds> (s<seeds> for full fits): the name says the machine too."""
        name = re.sub(r"[^a-z0-9]+", "-", self.run_dir.resolve().name.lower()).strip("-")[:20].strip("-") or "run"
        numbers = "-".join(map(str, folds)) if self.n_folds > 10 else "".join(map(str, folds))
        return f"kit-{name}-{self.tag}-{self.accelerator}-{'s' if self.kind == 'full' else 'f'}{numbers}"

    def member_dir(self, k: int) -> Path:
        return self.run_dir / f"{self.kind}{k}"

    def label(self, numbers) -> str:
        """'folds [0, 1]' or 'full fits [0, 1]'."""
        return f"{KINDS[self.kind]} {list(numbers)}"

    def kernel_dir(self, folds: tuple[int, ...]) -> Path:
        return self.kaggle_dir / "kernels" / self.slug(folds)


def fold_groups(folds: list[int], parallel: int, per_kernel: int | None) -> tuple[tuple[int, ...], ...]:
    """Folds split into consecutive groups, one kernel each: `per_kernel` folds, or by default as few folds per
    kernel as lets every kernel run at once (5 folds on 2 parallel sessions: 3 + 2)."""
    size = per_kernel or math.ceil(len(folds) / max(parallel, 1))
    return tuple(tuple(folds[i:i + size]) for i in range(0, len(folds), size))


def _check_machine(accelerator: str, parallel: int | None, per_kernel: int | None, backend: str | None) -> int:
    """Checks the machine options; returns --parallel, by default the most sessions Kaggle runs at once."""
    if accelerator not in ACCELERATORS:
        raise KitError(f"--accelerator {accelerator!r} is not known; use t4 (T4 x2) or tpu (TPU v5e-8)")
    parallel = MAX_PARALLEL[accelerator] if parallel is None else parallel
    if backend not in (None, "tensorflow", "jax"):
        raise KitError(f"--backend {backend!r} is not known; use tensorflow or jax")
    if not 1 <= parallel <= MAX_PARALLEL[accelerator]:
        raise KitError(f"--parallel {parallel}: Kaggle runs 1 to {MAX_PARALLEL[accelerator]} {accelerator} sessions "
                       "at once")
    if per_kernel is not None and per_kernel < 1:
        raise KitError(f"--folds-per-kernel {per_kernel}: give 1 or more")
    return parallel


def make_plan(cfg: Config, run_dir: Path, owner: str, *, n_folds: int = 5, only_folds: list[int] | None = None,
              accelerator: str = "t4", parallel: int | None = None, per_kernel: int | None = None,
              backend: str | None = None) -> Plan:
    """Folds in kernels: `only_folds` (default all) of GroupKFold's `n_folds`; `parallel` None: the accelerator's
    limit (MAX_PARALLEL)."""
    parallel = _check_machine(accelerator, parallel, per_kernel, backend)
    if n_folds < 2:
        raise KitError(f"--folds {n_folds}: GroupKFold needs at least 2 folds")
    folds = list(range(n_folds)) if not only_folds else sorted(set(only_folds))
    bad = [k for k in folds if not 0 <= k < n_folds]
    if bad:
        raise KitError(f"--fold {bad[0]} is out of range: with --folds {n_folds} use 0..{n_folds - 1}")
    backend = backend or ACCELERATORS[accelerator][2]
    check_batch_fits(cfg, accelerator, backend)
    return Plan(Path(run_dir), owner, cfg, n_folds, fold_groups(folds, parallel, per_kernel), accelerator,
                backend, parallel, wheel.build())


def check_batch_fits(cfg: Config, accelerator: str, backend: str) -> None:
    """The global batch must split over the kernel's replicas: refused here, not hours later in the kernel."""
    from kit.training.distribute import split_batch

    replicas = REPLICAS[accelerator] if accelerator == "t4" or backend == "jax" else 1  # TF sees no TPU there
    try:
        split_batch(cfg.train.batch_size, replicas)
    except KitError as err:
        raise KitError(f"--accelerator {accelerator}: {err}") from None


def make_full_plan(base: Config | None, overrides: list[str], run_dir: Path | None, owner: str, *, seeds: int = 1,
                   from_cv: Path | None = None, accelerator: str = "t4", parallel: int | None = None,
                   per_kernel: int | None = None, backend: str | None = None) -> tuple[Plan, str]:
    """Full fits on every signer in kernels (kit train --full there, one --member per full fit), and a line saying
    where the epoch count came from: --epochs (a train.epochs override), else the rounded mean of the best epochs
    of `from_cv`'s folds (trained here or pulled back from kernels), whose config is the base and whose folder the
    default run directory."""
    from kit.training.full import check_cv_run, check_seeds, full_config

    parallel = _check_machine(accelerator, parallel, per_kernel, backend)
    check_seeds(seeds)
    if from_cv is not None:
        check_cv_run(from_cv)
    cfg, note = full_config(base, overrides, from_cv)
    run_dir = Path(run_dir or from_cv or "runs/run")
    backend = backend or ACCELERATORS[accelerator][2]
    check_batch_fits(cfg, accelerator, backend)
    plan = Plan(run_dir, owner, cfg, seeds, fold_groups(list(range(seeds)), parallel, per_kernel), accelerator,
                backend, parallel, wheel.build(), kind="full")
    return plan, note


# ---- state ----------------------------------------------------------------------------------------------------

def state_path(run_dir: Path, kind: str = "fold") -> Path:
    return Path(run_dir) / "kaggle" / ("full" if kind == "full" else "") / "state.json"


def load_state(path: Path) -> dict:
    """A run's Kaggle state ({} before the first start); damaged, one line with what to do."""
    if not path.is_file():
        return {}
    run_dir = path.parents[2] if path.parent.name == "full" else path.parents[1]  # RUN/kaggle[/full]/state.json
    return runfiles.read_json(path, f"restore it from a copy, or delete it and start again with kit kaggle train "
                                    f"--out {run_dir} (kernels it pushed are not followed then: see "
                                    "https://www.kaggle.com/code)")


def save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def _fresh_group(folds: tuple[int, ...]) -> dict:
    return {"folds": list(folds), "version": None, "pushing": None, "status": "waiting", "pushed_at": None,
            "ended_at": None, "failure": None, "url": None, "files": {}}


def pushed(state: dict) -> bool:
    """Whether any kernel of this state was ever pushed (or may have been): only then does the state bind the run."""
    return any(g.get("version") is not None or g.get("pushing") is not None for g in state.get("groups", {}).values())


def init_state(plan: Plan) -> dict:
    """The run's state: recorded progress, checked against this plan (one run, one config). A state from a start
    that failed before any kernel was pushed binds nothing: a new plan replaces it (the wheel upload it records is
    kept), so that a failed start is never a dead end."""
    state = load_state(plan.state_path)
    settings = {"kind": plan.kind, "n_folds": plan.n_folds, "accelerator": plan.accelerator,
                "backend": plan.backend, "parallel": plan.parallel, "tag": plan.tag, "config": plan.cfg.to_dict()}
    if state and state.get("tag") != plan.tag and not pushed(state):
        state = {key: state[key] for key in ("owner", "wheel", "dataset_ready") if key in state}
    if state and state.get("tag") not in (None, plan.tag):
        resume = f"kit kaggle train --resume {plan.run_dir}" + (" --full" if plan.kind == "full" else "")
        raise KitError(f"{plan.run_dir} holds Kaggle kernels of other {KINDS[plan.kind]} (another config or "
                       f"count): give a new --out, or continue them with {resume}")
    state.update(settings)
    state.setdefault("groups", {})
    for folds in plan.groups:
        state["groups"].setdefault(plan.slug(folds), _fresh_group(folds))
    return state


def holds_work(run_dir: Path) -> bool:
    """Whether anything trained, or started training, in `run_dir`: a fold or full fit here, a kit train run, or a
    pushed Kaggle kernel. A config.json alone (an older kit's dry run, a failed start) binds nothing."""
    run_dir = Path(run_dir)
    return (any(run_dir.glob("fold*")) or any(run_dir.glob("full*")) or (run_dir / "run.json").is_file()
            or any(pushed(load_state(state_path(run_dir, kind))) for kind in KINDS))


def check_run_config(plan: Plan, write: bool = True) -> None:
    """RUN/config.json is the run's config: written once (`write`, by a real start; a dry run writes nothing that
    could block the next command), and a different one in a folder that holds work is an error.
    Full fits may join folds of the same recipe (up to epochs and seed, as kit train --full allows); beside folds,
    RUN/config.json stays theirs."""
    from kit.training.train import recipe_key

    path = plan.run_dir / "config.json"
    if plan.kind == "full" and path.is_file():
        if recipe_key(config_mod.load(path)) != recipe_key(plan.cfg):
            raise KitError(f"{plan.run_dir}: its folds were trained with another config (beyond epochs and seed): "
                           "give a new --out for these full fits, or drop --config/--recipe/--set")
        return
    if path.is_file() and config_mod.load(path) != plan.cfg and holds_work(plan.run_dir):
        kaggle, local = state_path(plan.run_dir).is_file(), (plan.run_dir / "run.json").is_file()
        resume = (f", or continue it with kit kaggle train --resume {plan.run_dir}" if kaggle
                  else f", or continue it with kit train --resume {plan.run_dir}" if local
                  else "")  # name only a command that works from here
        raise KitError(f"{plan.run_dir} holds a run with another config: give a new --out{resume}")
    if write:
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
    """What the kernel does: train `folds` (fold or full fit numbers) of the plan with the resolved config."""
    return {"wheel": plan.kit_wheel.name, "wheel_sha256": plan.kit_wheel.sha256, "kind": plan.kind,
            "n_folds": plan.n_folds, "folds": folds, "config": plan.cfg.to_dict(), "recipe": None, "overrides": [],
            "backend": plan.backend, "strategy": "auto", "internet": True}


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
    """The group's folds (or full fits) not finished here (metrics.json is the mark, as for kit train)."""
    return [k for k in group["folds"] if not (plan.member_dir(k) / "metrics.json").is_file()]


def plan_from_state(run_dir: Path, owner: str, kind: str = "fold") -> Plan:
    """The plan a run's kernels were started with (from its state), for --resume."""
    path = state_path(run_dir, kind)
    state = load_state(path)
    if not state.get("groups"):
        start = "kit kaggle train --full --from-cv RUN" if kind == "full" else f"kit kaggle train --out {run_dir}"
        raise KitError(f"{path}: missing; start Kaggle training with {start}")
    groups = tuple(tuple(g["folds"]) for g in state["groups"].values())
    return Plan(Path(run_dir), owner, config_mod.from_dict(state["config"]), state["n_folds"], groups,
                state["accelerator"], state["backend"], state["parallel"], wheel.build(), kind=kind)
