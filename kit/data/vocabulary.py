"""The signs a model names: the competition's 250, or your own N, carried from the data to every model and report.

A data set's vocabulary is its `sign_to_prediction_index_map.json` (sign -> output index). The competition's map
has 250 signs and is the output order of every submission. A folder of your own recordings (`kit capture --data
DIR --vocabulary own`) has a map of just the signs recorded there, and a model trained on it gets one output per
sign: a 250-way head would spend almost all its probability on the signs that never occur (measured on 125 real
sequences of 2 signs: out-of-fold accuracy 0.080 with 250 outputs, against a chance of 0.5).

Where the map travels:
- `kit prepare` keeps it in the cache (`Cache.signs`);
- `kit train` sets `model.n_classes` from it (so the config that travels with the weights rebuilds the right
  head) and writes it into the run folder, where `kit cv`, `kit report` and `kit runs` read the names;
- `kit export` writes it beside `model.tflite`, where `kit predict` finds it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from kit.config import Config
from kit.errors import KitError
from kit.data.landmarks import N_CLASSES, SIGN_MAP_NAME, sign_names


def is_competition(signs) -> bool:
    """Whether `signs` (names by output index) is the competition's own 250-sign map, in its order."""
    return tuple(signs) == sign_names()


def describe(signs) -> str:
    """'the competition's 250 signs' or 'own vocabulary: N signs'."""
    return "the competition's 250 signs" if is_competition(signs) else f"own vocabulary: {len(signs)} signs"


def with_signs(cfg: Config, signs, source: str | os.PathLike) -> Config:
    """`cfg` with `model.n_classes` = the number of `signs` (the map of `source`, a cache): one output per sign.

    A model.n_classes set by hand (not the default 250) that differs from the map is refused: the head must
    match the labels, or training would index outside it or waste outputs.
    """
    n = len(signs)
    if cfg.model.n_classes not in (n, N_CLASSES):
        raise KitError(f"model.n_classes={cfg.model.n_classes}, but {source} holds {n} signs: kit train sets "
                       "model.n_classes from the data's sign map; leave it unset")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, n_classes=n))


def write_map(folder: str | os.PathLike, signs) -> Path:
    """Write `signs` (names by output index) as FOLDER/sign_to_prediction_index_map.json; returns its path."""
    path = Path(folder) / SIGN_MAP_NAME
    path.write_text(json.dumps({sign: i for i, sign in enumerate(signs)}, indent=1) + "\n")
    return path


def read_map(path: str | os.PathLike) -> tuple[str, ...]:
    """Sign names by output index from a sign_to_prediction_index_map.json."""
    from kit.data.prepare import read_sign_map

    return tuple(read_sign_map(Path(path)))


def run_signs(run_dir: str | os.PathLike) -> tuple[str, ...]:
    """The signs a run's models name: RUN/sign_to_prediction_index_map.json (kit train writes it), else, for runs
    from before it did (and folds pulled back from Kaggle), the competition's when the run has 250 outputs."""
    run_dir = Path(run_dir)
    if (run_dir / SIGN_MAP_NAME).is_file():
        return read_map(run_dir / SIGN_MAP_NAME)
    n = _run_outputs(run_dir)
    if n == N_CLASSES:
        return sign_names()
    raise KitError(f"{run_dir}: its models have {n} outputs but the run holds no {SIGN_MAP_NAME}: copy the map of "
                   "the data it trained on into it")


def _run_outputs(run_dir: Path) -> int:
    for path in [run_dir / "config.json", *sorted(run_dir.glob("fold*/config.json")),
                 *sorted(run_dir.glob("full*/config.json"))]:
        if path.is_file():
            return int(json.loads(path.read_text()).get("model", {}).get("n_classes", N_CLASSES))
    return N_CLASSES


def model_signs(model_path: str | os.PathLike, n_outputs: int) -> tuple[str, ...]:
    """The names of a model file's `n_outputs` outputs: the map beside it (kit export writes one), else the
    competition's for a 250-output model; anything else is refused, naming the file to add."""
    beside = Path(model_path).resolve().parent / SIGN_MAP_NAME
    if beside.is_file():
        signs = read_map(beside)
        if len(signs) != n_outputs:
            raise KitError(f"{beside}: names {len(signs)} signs but {model_path} has {n_outputs} outputs: it is "
                           "not this model's map; put the map of the data the model trained on beside it")
        return signs
    if n_outputs == N_CLASSES:
        return sign_names()
    raise KitError(f"{model_path}: has {n_outputs} outputs (own vocabulary) and no {SIGN_MAP_NAME} beside it: copy "
                   "the sign map of the data it trained on (the run folder has it) next to the model")
