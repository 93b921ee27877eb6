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

from kit import recipes as _recipes
from kit.errors import KitError


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
JIT_COMPILE = ("auto", "on", "off")
OPTIMIZERS = ("lion", "adamw", "radam")
# Keys whose value is one of a few names: anything else is refused when the config is built, listing them.
CHOICES = {
    "train.precision": PRECISIONS, "train.jit_compile": JIT_COMPILE, "train.optimizer": OPTIMIZERS,
    "preprocess.points": ("kit", "1st"),
    "preprocess.center": ("head", "face17"),
    "preprocess.scale": ("spread", "axis_std", "none"),
    "preprocess.drop_frames": ("handless", "empty", "none"),
    "preprocess.long": ("subsample", "first"),
}


@dataclass(frozen=True)
class PreprocessConfig:
    # Frames the model sees at most: most real sequences are shorter (median ~19 frames), and 64 keeps a CPU
    # epoch short (kit's choice); the recipes set their sources' lengths (conv1st 384, llama26 512).
    max_len: int = 64
    # x and y only (kit's choice): MediaPipe's z is a noisy depth estimate; both published recipes drop it too.
    use_z: bool = False
    # The landmarks kept: "kit" = both hands, 20 lip, 6 eye and 17 upper-body pose points (85, kit's choice);
    # "1st" = the 1st place's 118: 40 lip, both hands, 4 nose and 2 x 16 eye points, no pose.
    points: str = "kit"
    # The origin: "head" = the nose tip's mean over the sequence (the pose's nose where the face is missing,
    # kit/preprocessing/head.py; kit's choice); "face17" = face point 17's mean (the 1st place; 0.5 if never seen).
    center: str = "head"
    # The unit of length: "spread" = RMS distance of the kept x and y from the origin, one number (kit's
    # choice); "axis_std" = each axis' own std about the origin (the 1st place); "none" = raw units (26th place).
    scale: str = "spread"
    # Frames left out before anything else: "handless" = frames with neither hand (kit's choice: in the real
    # samples 65 % of frames have no hand); "empty" = frames where every kept point is missing (the 1st place);
    # "none" = every frame.
    drop_frames: str = "handless"
    # A sequence longer than max_len: "subsample" = evenly spaced frames over all of it (kit's choice: a crop
    # would lose the end); "first" = its first max_len frames (the 1st place at inference; training then
    # crops a random window first when train.random_crop is on).
    long: str = "subsample"
    # Forward differences x(t + k) - x(t) for k = 1..diffs of every kept coordinate, 0 past the end (the 1st
    # place: 2, so 6 channels a point). Not `motion`'s backward velocity and acceleration.
    diffs: int = 0
    # The 80th-place feature options (kit/preprocessing/features.py), all off by default.
    dominant_hand: bool = False  # keep the hand with fewer missing frames, mirrored to be a right hand
    shoulder_unit: bool = False  # shoulder width as the unit of length (the spread where shoulders are never seen)
    distances: bool = False  # hand-to-face and wrist-to-fingertip distances
    angles: bool = False  # finger joint angles and the hand-elbow-shoulder angle
    motion: bool = False  # velocity and acceleration of every kept coordinate
    trim_idle: bool = False  # drop idle frames at the start and end (hands still, before and after the sign)

    def __post_init__(self):
        if self.points == "1st" and (self.dominant_hand or self.shoulder_unit or self.distances or self.angles):
            raise KitError("preprocess.points=1st keeps no pose and no nose-tip reference: dominant_hand, "
                           "shoulder_unit, distances and angles need preprocess.points=kit")
        if self.diffs < 0:
            raise KitError(f"preprocess.diffs must be 0 or more, got {self.diffs}")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "llama_small"  # the size of the 26th place's 3-model ensemble (2 heads, 6 layers), under 100 ms
    # One output per sign of the data's map: 250 for the competition's; kit train sets it from the cache's map
    # (kit/data/vocabulary.py), so that a run on your own N signs gets an N-way head and export rebuilds it.
    n_classes: int = 250
    # Size overrides of the preset, e.g. {"dim": 128, "depth": 2}; empty means the registered preset as is.
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64  # the global batch, split over replicas; 128 in the winning recipes; smaller: short CPU steps
    # lion | adamw | radam. Lion (the 26th place's) takes a ~10x smaller rate than AdamW. radam is RAdam as
    # TensorFlow Addons' RectifiedAdam computes it (the 1st place's), decay included: see weight_decay.
    optimizer: str = "lion"
    learning_rate: float = 3e-4  # kit's choice for small data and batch 64 (the 26th place: 1e-4 at batch 128)
    min_learning_rate: float = 1e-5  # the cosine decay's floor
    warmup_epochs: int = 2  # kit's choice: a linear warm-up steadies the first steps of a short run
    # lion and adamw decay decoupled, lr_t x weight_decay x w a step (Keras); radam as the 1st place set it up,
    # with a decay that follows the schedule, lr_t x (weight_decay x lr_t) x w a step.
    weight_decay: float = 0.05
    # Lookahead around the optimizer: every lookahead_sync steps the slow weights move lookahead_alpha of the
    # way to the fast ones, which restart from there (the 1st place: 5 and TF Addons' default 0.5); 0 = off.
    lookahead_sync: int = 0
    lookahead_alpha: float = 0.5
    # radam: below this length of the approximated simple moving average, take SGD-with-momentum steps (the 1st
    # place: 4; TF Addons' default 5).
    radam_sma_threshold: float = 4.0
    clip_norm: float = 0.0  # clip the gradient to this global norm; 0 = off (the 26th place's code: 1.0)
    label_smoothing: float = 0.1  # kit's choice (the 1st place: 0.1; the 26th place found it hurt: 0)
    ema: bool = True  # an EMA of the weights validates and exports (the 26th place's; the 1st place had none)
    ema_momentum: float = 0.99
    mixup_alpha: float = 0.0  # 0 disables (neither source recipe mixes; kit's choice to offer it)
    # Adversarial weight perturbation (the 1st place: 0.2 from epoch 15): each step takes its gradient at the
    # weights moved by awp_lambda x g / |g| per weight tensor (g the loss gradient), then applies it to the
    # unmoved weights. 0 = off.
    awp_lambda: float = 0.0
    awp_start_epoch: int = 0
    # The epoch from which the model's late dropout is on (the 1st place: 15); -1 = the model preset's own step.
    late_dropout_epoch: int = -1
    mirror_prob: float = 0.5  # swap hands and flip x: left-handed signers are otherwise rare (both sources: 0.5)
    # The 1st place's augmentations, in its order, each off by default (kit's choice: measure them on your
    # folds): resample the time axis by a rate in [resample_min, resample_max] (bilinear, bicubic or nearest at
    # random); the mirror above; a random window of max_len frames (random_crop); an affine map (scale, shear on
    # one axis, rotation about the shifted image centre, shift); a run of frames masked (a fraction in
    # [temporal_mask_min, temporal_mask_max] of them); every point inside a random square masked (its side in
    # [spatial_mask_min, spatial_mask_max] of the image). Masked points become NaN, as missing ones are.
    resample_prob: float = 0.0
    resample_min: float = 0.5
    resample_max: float = 1.5
    random_crop: bool = False
    affine_prob: float = 0.0
    affine_scale: float = 0.2  # scale uniform in 1 +- affine_scale
    affine_shear: float = 0.15  # shear uniform in +- affine_shear on x or on y
    affine_degrees: float = 30.0  # rotation uniform in +- affine_degrees
    affine_shift: float = 0.1  # one shift uniform in +- affine_shift, added to x, y and z
    temporal_mask_prob: float = 0.0
    temporal_mask_min: float = 0.2
    temporal_mask_max: float = 0.4
    spatial_mask_prob: float = 0.0
    spatial_mask_min: float = 0.2
    spatial_mask_max: float = 0.4
    # Geometric augmentations of the 80th place, off by default (the 26th place's write-up: "Most augmentations are
    # not helpful"): measure them on your folds (kit train --set train.rotate_deg=10 ...).
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


# The published recipes (kit/recipes.py): every setting with its source, `--recipe NAME`. The defaults above are
# the kit's own choices for small data and CPUs; a recipe carries its source's full-data settings.
RECIPES = _recipes.RECIPES


def recipe(name: str) -> Config:
    """The config of a named recipe (see RECIPES); an unknown name lists the valid ones."""
    if name not in RECIPES:
        raise KitError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return apply_overrides(Config(), RECIPES[name].overrides())


def from_dict(data: dict) -> Config:
    """Build a Config from nested dicts; an unknown section or key is an error, never ignored.

    A config.json written before a key was renamed or a model's default changed is read as what it trained
    (`_upgrade`), so old runs export and resume unchanged."""
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    data = _upgrade(data)
    kwargs = {}
    for name, values in data.items():
        if name not in sections:
            raise KitError(f"unknown config section {name!r}; valid: {', '.join(sections)}")
        cls = _section_class(name)
        kwargs[name] = _build(cls, values, prefix=name)
    return Config(**kwargs)


# What conv_transformer's attention did before it became the 1st place's (no positions, 1/sqrt(dim) scores):
# rotary positions and 1/sqrt(head_dim). A saved config without preprocess.points predates the change.
LEGACY_CONV_ATTENTION = {"rope": True, "attention_scale": "head"}


def _upgrade(data: dict) -> dict:
    """A saved config in today's keys: preprocess.drop_handless (a bool) is preprocess.drop_frames, and a
    conv_transformer run saved before preprocess.points existed keeps the attention it trained with."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    pre = data.get("preprocess")
    if not isinstance(pre, dict) or "points" in pre:
        return data
    if "drop_handless" in pre:
        pre["drop_frames"] = "handless" if pre.pop("drop_handless") else "none"
    model = data.get("model")
    if isinstance(model, dict) and str(model.get("name", "")).startswith("conv_transformer"):
        model["overrides"] = {**LEGACY_CONV_ATTENTION, **(model.get("overrides") or {})}
    return data


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
