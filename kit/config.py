"""The run configuration: frozen dataclasses, type-checked overrides, saved next to every set of weights.

A run is rebuilt from its `config.json` alone (export and evaluate never retype sizes by hand).
Overrides use dotted keys: `train.epochs=3`, `model.name=llama_small`, `preprocess.max_len=64`; `flatten` turns a
saved config back into those keys (kit runs and kit report compare runs by them).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
JIT_COMPILE = ("auto", "on", "off")
# Keys whose value is one of a few names: anything else is refused when the config is built, listing them.
CHOICES = {"train.precision": PRECISIONS, "train.jit_compile": JIT_COMPILE}


@dataclass(frozen=True)
class PreprocessConfig:
    max_len: int = 64  # synthetic and most real sequences are shorter; 384 in the 1st-place recipe for full data
    # x and y only: z from MediaPipe is noisy depth, and the 26th place found it did not help.
    use_z: bool = False
    # Frames with neither hand are dropped (the 26th-place recipe): they carry almost no sign information.
    drop_handless: bool = True
    # The 80th-place feature options (kit/preprocessing/features.py); all off = the 26th-place recipe above.
    dominant_hand: bool = False  # keep the hand with fewer missing frames, mirrored to be a right hand
    shoulder_unit: bool = False  # shoulder width as the unit of length (the spread where shoulders are never seen)
    distances: bool = False  # hand-to-face and wrist-to-fingertip distances
    angles: bool = False  # finger joint angles and the hand-elbow-shoulder angle
    motion: bool = False  # velocity and acceleration of every kept coordinate
    trim_idle: bool = False  # drop idle frames at the start and end (hands still, before and after the sign)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "llama_small"  # the 26th-place model that ensembled three times under 100 ms
    # One output per sign of the data's map: 250 for the competition's; kit train sets it from the cache's map
    # (kit/data/vocabulary.py), so that a run on your own N signs gets an N-way head and export rebuilds it.
    n_classes: int = 250
    # Size overrides of the preset, e.g. {"dim": 128, "depth": 2}; empty means the registered preset as is.
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64  # the global batch, split over replicas; 128 in the winning recipes; smaller: short CPU steps
    optimizer: str = "lion"  # lion | adamw: Lion with a 10x smaller lr than AdamW, as the 1st/26th places used
    learning_rate: float = 3e-4
    min_learning_rate: float = 1e-5  # cosine decay floor
    warmup_epochs: int = 2
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    ema: bool = True  # an EMA of weights generalised better on unseen signers in the 1st-place solution
    ema_momentum: float = 0.99
    mixup_alpha: float = 0.0  # 0 disables; 0.5 is the seed recipe for long training on the full data
    mirror_prob: float = 0.5  # swap hands and flip x: left-handed signers are otherwise rare
    # Geometric augmentations of the 80th place, off by default: the 26th place found most augmentations hurt,
    # so measure them on your folds (kit train --set train.rotate_deg=10 ...).
    rotate_deg: float = 0.0  # random rotation in the image plane, uniform in +-rotate_deg, around the head
    scale_range: float = 0.0  # random zoom, uniform in 1 +- scale_range, around the head
    noise_std: float = 0.0  # Gaussian noise added to every visible coordinate
    seed: int = 0
    # Compute dtype (weights, logits and the loss stay float32; export always rebuilds float32). float32 by default:
    # exact, and the only one CPUs run fast; mixed_bfloat16 is the one to try on a TPU or a GPU since Ampere (about
    # twice the speed, no loss scaling); mixed_float16 for older GPUs (Keras scales the loss for it).
    precision: str = "float32"
    # XLA: auto = on under JAX (it always compiles through XLA) or when TF sees a GPU/TPU, off on a CPU under TF
    # (XLA compiles these models slowly there and runs no faster); on | off force it.
    jit_compile: str = "auto"
    # Batches per epoch; 0 = one pass over the training sequences. The pipeline is one endless stream, so an
    # epoch may be any length: shorter ones validate and back up more often on the full data, or rehearse a
    # fraction of an epoch (bench/fullscale.py).
    steps_per_epoch: int = 0


@dataclass(frozen=True)
class Config:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


# The winning recipes for the full data set, as override lists on top of the defaults: `--recipe NAME`.
# The defaults above are the 26th-place recipe scaled to small data and CPUs (a higher rate, smaller batches,
# no mixup: a few hundred steps must learn something); the recipes carry the published full-data settings.
RECIPES: dict[str, tuple[str, ...]] = {
    # 26th place: LLaMa-style transformer (RMSNorm, RoPE, SwiGLU), Lion at 1e-4 with cosine decay to 1e-5,
    # batch 128, EMA, mixup 0.5, mirroring; three of these ensembled under the latency limit.
    "llama26": ("model.name=llama_small", "train.optimizer=lion", "train.learning_rate=1e-4",
                "train.min_learning_rate=1e-5", "train.batch_size=128", "train.mixup_alpha=0.5", "train.ema=true",
                "train.epochs=100"),
    # 1st place: depthwise Conv1D + ECA blocks interleaved with transformer blocks, late dropout, 384 frames,
    # AdamW with a higher rate, mixup; the winners trained ~300 epochs on the full data.
    "conv1st": ("model.name=conv_transformer", "preprocess.max_len=384", "train.optimizer=adamw",
                "train.learning_rate=5e-4", "train.weight_decay=0.1", "train.mixup_alpha=0.5"),
    # 80th place: an FC network over engineered features (dominant hand, distances, angles, motion, shoulder
    # units, idle frames trimmed) with rotation, zoom and noise augmentations.
    "mlp80": ("model.name=mlp", "preprocess.dominant_hand=true", "preprocess.shoulder_unit=true",
              "preprocess.distances=true", "preprocess.angles=true", "preprocess.motion=true",
              "preprocess.trim_idle=true", "train.optimizer=adamw", "train.learning_rate=1e-3",
              "train.rotate_deg=10", "train.scale_range=0.1", "train.noise_std=0.005"),
}


def recipe(name: str) -> Config:
    """The config of a named recipe (see RECIPES); an unknown name lists the valid ones."""
    if name not in RECIPES:
        raise KitError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return apply_overrides(Config(), list(RECIPES[name]))


def from_dict(data: dict) -> Config:
    """Build a Config from nested dicts; an unknown section or key is an error, never ignored."""
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    kwargs = {}
    for name, values in data.items():
        if name not in sections:
            raise KitError(f"unknown config section {name!r}; valid: {', '.join(sections)}")
        cls = _section_class(name)
        kwargs[name] = _build(cls, values, prefix=name)
    return Config(**kwargs)


def load(path: Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: no such config file")
    try:
        data = json.loads(path.read_bytes())
    except ValueError as err:  # cut short, NUL bytes, not text: one line, and where a copy is (kit.runfiles)
        raise KitError(f"{path}: damaged, not valid JSON ({err}): restore it (in a run, each fold*/config.json holds "
                       "the run's config)") from None
    if not isinstance(data, dict):
        raise KitError(f"{path}: a JSON {type(data).__name__}, not a config the kit wrote")
    return from_dict(data)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings; values are parsed as JSON when possible and type-checked."""
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise KitError(f"override {item!r} must look like section.key=value, e.g. train.epochs=3")
        key, raw = item.split("=", 1)
        section, name = key.split(".", 1)
        if section not in data:
            raise KitError(f"unknown config section {section!r} in {item!r}; valid: {', '.join(data)}")
        if section == "model" and name not in data["model"]:
            data["model"]["overrides"] = {**data["model"]["overrides"], name: parse_value(raw)}
            continue
        if name not in data[section]:
            raise KitError(f"unknown key {key!r}; valid: {', '.join(f'{section}.{k}' for k in data[section])}")
        data[section][name] = parse_value(raw)
    return from_dict(data)


def parse_value(raw: str) -> Any:
    """An override's value: JSON when it parses as JSON (3, 0.5, true, "a", {"dim": 64}), else the bare string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _section_class(name: str) -> type:
    return {"preprocess": PreprocessConfig, "model": ModelConfig, "train": TrainConfig}[name]


def _build(cls: type, values: dict, prefix: str):
    if not isinstance(values, dict):
        raise KitError(f"config section {prefix!r} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in known:
            raise KitError(f"unknown key {prefix}.{key}; valid: {', '.join(f'{prefix}.{k}' for k in sorted(known))}")
        choices = CHOICES.get(f"{prefix}.{key}")
        if choices is not None and value not in choices:
            raise KitError(f"{prefix}.{key}={value!r} is not known; use one of {', '.join(choices)}")
        out[key] = _check_type(hints[key], value, f"{prefix}.{key}")
    return cls(**out)


def _check_type(hint, value, key: str):
    if isinstance(hint, types.GenericAlias) or typing.get_origin(hint) is not None:
        hint = typing.get_origin(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise KitError(f"{key} must be {hint.__name__}, got {value!r}")
    return value


def flatten(config: dict) -> dict[str, Any]:
    """{"train": {"epochs": 3}, "model": {"overrides": {"dim": 64}}} -> {"train.epochs": 3, "model.dim": 64}: the
    keys --set takes."""
    flat = {}
    for section, values in config.items():
        if not isinstance(values, dict):  # not a config section kit writes: kept as it is, to compare
            flat[section] = values
            continue
        for key, value in values.items():
            if section == "model" and key == "overrides" and isinstance(value, dict):
                flat.update({f"model.{k}": v for k, v in value.items()})
            else:
                flat[f"{section}.{key}"] = value
    return flat
