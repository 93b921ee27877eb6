"""`kit train`: GroupKFold-by-participant training with out-of-fold predictions, checkpoints and metrics.

Run directory layout (everything export and evaluate need travels with the weights):

    RUN/config.json            the resolved config (model.n_classes: the signs of the data's map)
    RUN/sign_to_prediction_index_map.json   the data's sign map: the names of the models' outputs
    RUN/run.json               cache, folds and strategy of the run (what --resume needs)
    RUN/folds.csv              sequence_id, participant_id, fold
    RUN/cv.json, RUN/report.md per-fold, per-participant and overall out-of-fold accuracy, confused signs
    RUN/report.html            the same with training curves (and export gates once exported), one HTML file
    RUN/fold{K}/config.json    the config the fold trained with
    RUN/fold{K}/model.weights.h5   the best epoch (by validation accuracy on unseen signers; EMA weights if on)
    RUN/fold{K}/history.csv    loss, accuracy and learning rate per epoch
    RUN/fold{K}/tensorboard/   TensorBoard logs
    RUN/fold{K}/backup/        last finished epoch, optimizer and EMA state included (removed when the fold ends)
    RUN/fold{K}/oof.npz        sequence_ids, participant_ids, labels, probs of the held-out signers
    RUN/fold{K}/metrics.json   the fold's best validation accuracy and its epoch: the mark of a finished fold
    RUN/full{S}/               a final fit on every signer (kit train --full), seed train.seed + S: config.json,
                               history.csv, tensorboard/, backup/ as a fold's; model.weights.h5 is the last epoch
                               (EMA weights if on), since no held-out signer can pick one; metrics.json says
                               "validated": false with epochs, seed and training sequences (no oof.npz)

Folds and full fits may share a run directory (the full fits of `--from-cv RUN` go beside RUN's folds) when
they share the config up to train.epochs, train.seed and train.jit_compile; kit cv only ever reads the folds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from kit import config as config_mod
from kit.seeing import track
from kit.data import vocabulary
from kit.config import Config
from kit.training.cv import CVResult, summarize
from kit.training import optimizers
from kit.training.devices import backend_accelerators
from kit.training.distribute import Replicas, check_batch, split_batch, strategy_scope
from kit.errors import KitError
from kit.data.folds import assign_folds
from kit.models import create_model
from kit.preprocessing.preprocess import n_features
from kit.progress import plural, say
from kit.runlock import writing
from kit import runfiles
from kit.seeing.report import report_or_warn

if TYPE_CHECKING:
    from kit.data.cache import Cache

DEFAULT_CACHE, DEFAULT_RUN = Path("cache"), Path("runs/run")  # kit train's --cache and --out
REBUILD_META = ("delete it, then give again the kit train command that started {run_dir} (its finished folds and "
                "full fits are kept)")


def build_model(cfg: Config, precision: str | None = None, steps_per_epoch: int = 0) -> keras.Model:
    """The model a config describes, with fresh weights, in `precision` (default: the config's train.precision).
    With train.late_dropout_epoch >= 0 its late dropout starts after that many epochs of `steps_per_epoch`."""
    overrides = dict(cfg.model.overrides)
    if cfg.train.late_dropout_epoch >= 0:
        overrides["late_dropout_step"] = cfg.train.late_dropout_epoch * steps_per_epoch
    try:
        return create_model(cfg.model.name, max_len=cfg.preprocess.max_len, n_features=n_features(cfg.preprocess),
                            n_classes=cfg.model.n_classes, precision=precision or cfg.train.precision, **overrides)
    except KitError as err:
        if cfg.train.late_dropout_epoch >= 0 and "no size late_dropout_step" in str(err):
            raise KitError(f"train.late_dropout_epoch={cfg.train.late_dropout_epoch}: model {cfg.model.name!r} has "
                           f"no late dropout; the models with one: {', '.join(_late_dropout_models())}") from None
        raise


def _late_dropout_models() -> list[str]:
    """The registered models that take a late_dropout_step (tried at a tiny size; an error message's list)."""
    from kit.models import list_models

    def takes_it(name: str) -> bool:
        try:
            create_model(name, max_len=8, n_features=8, n_classes=2, late_dropout_step=0)
        except KitError:
            return False
        return True

    return [name for name in list_models() if takes_it(name)]


def load_fold_model(fold_dir: Path) -> tuple[keras.Model, Config]:
    """Rebuild a trained fold's (or full fit's) model from its saved config and kept weights, always in float32:
    the weights are float32 whatever the training precision, and export converts and checks parity against this."""
    fold_dir = Path(fold_dir)
    weights = fold_dir / "model.weights.h5"
    if not weights.is_file():
        raise KitError(f"{weights}: no trained weights here; run kit train first (or pick a finished fold)")
    cfg = config_mod.load(fold_dir / "config.json")
    model = build_model(cfg, precision="float32")
    model.load_weights(weights)
    return model, cfg


def resolve_jit_compile(setting: str, replicas: int = 1) -> bool:
    """train.jit_compile as model.compile takes it. auto: on under JAX (whose only compiler is XLA: off would run
    op by op), and under TF on one GPU or TPU; off under TF on CPUs, where XLA compiles these models slowly for no
    speed, and across tf.distribute replicas (Keras' own auto keeps XLA off there too)."""
    if setting != "auto":
        return setting == "on"
    if keras.backend.backend() == "jax":
        return True
    return bool(backend_accelerators()) and replicas == 1


def compile_model(cfg: Config, steps_per_epoch: int, replicas: int = 1) -> keras.Model:
    """A fresh model in the config's precision, compiled with its optimizer, loss and XLA setting.

    Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer (the model's policy asks for it); the
    logits are float32 in every policy, so the loss is too. Accuracy is a weighted metric (Keras 3 ignores sample
    weights in plain `metrics`), so the rows that pad a validation batch for the replicas count for nothing.
    With train.awp_lambda > 0 the model trains with AWP from epoch train.awp_start_epoch (kit.training.awp): same
    layers and weights, so the weights files are the plain model's.
    """
    model = build_model(cfg, steps_per_epoch=steps_per_epoch)
    if cfg.train.awp_lambda > 0:
        from kit.training.awp import with_awp

        model = with_awp(model, cfg.train.awp_lambda, start_step=cfg.train.awp_start_epoch * steps_per_epoch)
    model.compile(
        optimizer=_optimizer(cfg, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=cfg.train.label_smoothing),
        weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=resolve_jit_compile(cfg.train.jit_compile, replicas),
    )
    return model


def train(cfg: Config, cache_dir: Path, run_dir: Path, n_folds: int = 5, only_folds: list[int] | None = None,
          strategy: str = "auto") -> CVResult:
    """Train every fold (or `only_folds`) and write the run directory; returns the cross-validation summary."""
    from kit.data.cache import open_cache

    build_model(cfg)  # fail fast on a bad model name or size, before any data is read
    check_batch(cfg.train.batch_size, strategy)  # and on a global batch the replicas cannot split
    cache = open_cache(cache_dir)
    cfg = vocabulary.with_signs(cfg, cache.signs, cache_dir)  # one output per sign of the data's map
    folds = assign_folds(cache.participant_ids, n_folds)
    wanted = list(range(n_folds)) if only_folds is None else sorted(set(only_folds))
    bad = [k for k in wanted if not 0 <= k < n_folds]
    if bad:
        raise KitError(f"--fold {bad[0]} is out of range: with --folds {n_folds} use 0..{n_folds - 1}")
    run_dir = Path(run_dir)
    with writing(run_dir, "kit train", "run"):  # one writer per run: a second kit train is refused
        meta = read_meta(run_dir)
        check_cache(run_dir, meta, cache_dir)
        recorded = _check_same_run(run_dir, meta, cfg, n_folds)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.json")
        vocabulary.write_map(run_dir, cache.signs)
        meta.update(cache=str(Path(cache_dir).resolve()), n_folds=n_folds, folds=sorted(set(recorded) | set(wanted)),
                    strategy=strategy)
        write_meta(run_dir, meta)
        _write_folds(run_dir / "folds.csv", cache, folds)
        for k in wanted:
            fold_dir = run_dir / f"fold{k}"
            if (fold_dir / "metrics.json").is_file():
                say(f"fold {k}: already finished ({fold_dir / 'metrics.json'}), skipped")
                continue
            train_fold(cfg, cache, folds, k, fold_dir, strategy)
        result = summarize(run_dir)
        report_or_warn(run_dir)  # RUN/report.html; a failure there is a warning line, never a lost run
        return result


def read_meta(run_dir: Path) -> dict:
    """RUN/run.json: cache, strategy, n_folds and folds (once folds trained), full (once full fits trained)."""
    path = Path(run_dir) / "run.json"
    return runfiles.read_json(path, REBUILD_META.format(run_dir=run_dir)) if path.is_file() else {}


def write_meta(run_dir: Path, meta: dict) -> None:
    tmp = Path(run_dir) / "run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, Path(run_dir) / "run.json")


def check_cache(run_dir: Path, meta: dict, cache_dir: Path) -> None:
    """A run's folds and full fits all come from one cache (resume reads it from run.json)."""
    if meta and Path(meta["cache"]) != Path(cache_dir).resolve():
        raise KitError(f"{run_dir} was trained on the cache {meta['cache']}: give a new --out for {cache_dir}, "
                       f"or continue it with kit train --resume {run_dir}")


def recipe_key(cfg: Config) -> Config:
    """The config without what folds and full fits of one run may differ in (epochs, seed, XLA): two configs
    with equal keys train the same recipe."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=0, seed=0, jit_compile="auto"))


def _check_same_run(run_dir: Path, meta: dict, cfg: Config, n_folds: int) -> list[int]:
    """Folds an earlier invocation asked for; a different config or fold count in the same folder is an error."""
    if "n_folds" in meta:
        if config_mod.load(run_dir / "config.json") != cfg or meta["n_folds"] != n_folds:
            raise KitError(f"{run_dir} holds a run with another config or fold count: give a new --out, "
                           f"or continue it with kit train --resume {run_dir}")
        return meta["folds"]
    if meta.get("full") and recipe_key(config_mod.load(run_dir / "config.json")) != recipe_key(cfg):
        raise KitError(f"{run_dir} holds full fits with another config: give a new --out for these folds")
    return []


def train_fold(cfg: Config, cache: "Cache", folds: np.ndarray, fold: int, fold_dir: Path,
               strategy: str = "auto") -> float:
    """Train on every fold but `fold`, keep the best epoch on `fold`'s signers; returns its accuracy."""
    keras.utils.set_random_seed(cfg.train.seed + fold)
    fold_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(fold_dir / "config.json")
    done = finished_epochs(fold_dir)
    train_idx, val_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    say(f"fold {fold}: {len(train_idx)} training sequences, {len(val_idx)} held-out sequences "
        f"from {plural(len(np.unique(cache.participant_ids[val_idx])), 'unseen signer')}"
        + (f"; resuming after epoch {done}" if done else ""))
    start = time.time()
    model, val_ds, replicas = fit_model(cfg, cache, train_idx, val_idx, fold_dir, done, strategy)
    finished_epochs(fold_dir)  # history.csv checked against the backup (rewritten from it if damaged)
    history = _read_history(fold_dir / "history.csv", runfiles.member_fix(fold_dir))
    best_epoch = int(np.argmax(history["val_accuracy"]))

    from kit.training.pipeline import predict

    model.load_weights(fold_dir / "model.weights.h5")
    logits = predict(model, val_ds, len(val_idx))  # every held-out sequence, the padding for the replicas dropped
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    labels = cache.labels[val_idx]
    accuracy = float(np.mean(probs.argmax(-1) == labels))
    np.savez(fold_dir / "oof.npz", sequence_ids=cache.sequence_ids[val_idx],
             participant_ids=cache.participant_ids[val_idx], labels=labels, probs=probs.astype(np.float32))
    metrics = {"fold": fold, "validated": True, "val_accuracy": accuracy, "best_epoch": best_epoch + 1,
               "epochs": cfg.train.epochs, "train_sequences": len(train_idx), "val_sequences": len(val_idx),
               "seconds": round(time.time() - start, 1), "resumed_after_epoch": done, "devices": str(replicas),
               "batch_size": cfg.train.batch_size}
    runfiles.write_text(fold_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    shutil.rmtree(fold_dir / "backup", ignore_errors=True)  # only now: until metrics.json, a resume needs it
    say(f"fold {fold}: best epoch {best_epoch + 1}, accuracy on unseen signers {accuracy:.3f}")
    return accuracy


def fit_model(cfg: Config, cache: "Cache", train_idx: np.ndarray, val_idx: np.ndarray | None, out_dir: Path,
              done: int, strategy: str) -> tuple[keras.Model, object, Replicas]:
    """Train on `train_idx` from epoch `done` (restored from out_dir/backup) to cfg.train.epochs, keeping in
    out_dir/model.weights.h5 the best epoch on `val_idx`, or the last epoch when `val_idx` is None (a full fit).
    Returns the model (last epoch), the validation dataset (None without one) and the replicas it trained on.

    train.batch_size is the global batch whatever the replicas (kit.training.distribute), so steps, schedule and mixup
    are the same recipe on every machine."""
    from kit.training.pipeline import make_dataset, steps_per_epoch

    with strategy_scope(strategy) as replicas:
        batch = cfg.train.batch_size
        per_replica = split_batch(batch, replicas.count)
        if replicas.count > 1:
            say(f"global batch {batch}: {per_replica} sequences on each of {replicas}")
        steps = steps_per_epoch(cfg, len(train_idx), batch)
        train_ds = make_dataset(cache, train_idx, cfg, training=True, start_pass=done, batch_size=batch)
        val_ds = None if val_idx is None else make_dataset(cache, val_idx, cfg, training=False, batch_size=batch,
                                                           replicas=replicas.count)
        model = compile_model(cfg, steps, replicas.count)
        if done:
            EpochBackup.restore(model, out_dir / "backup", out_dir / "model.weights.h5")
    if cfg.train.precision != "float32" or model.jit_compile:
        say(f"compute: {cfg.train.precision}, XLA {'on' if model.jit_compile else 'off'} "
            f"(train.jit_compile={cfg.train.jit_compile})")
    verbose = 1 if sys.stderr.isatty() else 2  # a live bar in a terminal, one line per epoch in a log
    model.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs, initial_epoch=done, steps_per_epoch=steps,
              callbacks=_callbacks(cfg, out_dir, done, validated=val_ds is not None), shuffle=False,
              verbose=verbose)  # the pipeline shuffles
    return model, val_ds, replicas


def _callbacks(cfg: Config, fold_dir: Path, done: int, validated: bool = True) -> list[keras.callbacks.Callback]:
    # Order matters at each epoch end: log the epoch first (so history.csv never trails the backup), then one
    # crash-safe step backs up the epoch and keeps the best weights. Validation runs with the EMA weights swapped in.
    callbacks = [LogLearningRate(), keras.callbacks.CSVLogger(fold_dir / "history.csv", append=bool(done)),
                 EpochBackup(fold_dir / "backup", fold_dir / "model.weights.h5", ema=cfg.train.ema,
                             validated=validated)]
    if cfg.train.ema and validated:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    callbacks.append(keras.callbacks.TensorBoard(fold_dir / "tensorboard", write_graph=False))
    return callbacks + track.epoch_callbacks(fold_dir)  # MLflow's per-epoch metrics under --track, else none


class LogLearningRate(keras.callbacks.Callback):
    """Puts the learning rate the schedule reached into the epoch's logs (history.csv, TensorBoard)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EpochBackup(keras.callbacks.Callback):
    """After every epoch: the raw weights with the optimizer state (EMA included) to `backup/`, and, when the
    epoch beats the best validation accuracy so far, its weights (the EMA ones if on) to `best`. Without
    validation (`validated=False`, a full fit) every epoch counts as the best, so `best` holds the last epoch.

    Crash-safe whatever instant a kill lands: new files are written under new names, `state.json` is replaced
    atomically to name them, and only then is the best file renamed into place; `restore` finishes that rename
    if the kill fell between the two. So the best weights on disk always match the history that resume trusts.
    """

    def __init__(self, backup_dir: Path, best: Path, ema: bool = False, validated: bool = True):
        super().__init__()
        self.backup_dir, self.best, self.ema, self.validated = Path(backup_dir), Path(best), ema, validated
        state = runfiles.backup_state(self.backup_dir.parent) or {}
        self.best_accuracy = state.get("best_val_accuracy")
        self.history = state.get("history", [])  # every epoch's logs: history.csv is rebuilt from them if damaged

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        weights = self.backup_dir / f"epoch{epoch + 1}.weights.h5"
        self.model.save_weights(weights)
        accuracy = float((logs or {}).get("val_accuracy", float("nan")))
        self.history = self.history[:epoch] + [{"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}]
        state = {"epoch": epoch + 1, "weights": weights.name, "best_val_accuracy": self.best_accuracy,
                 "history": self.history}
        improved = not self.validated or (
            not math.isnan(accuracy) and (self.best_accuracy is None or accuracy > self.best_accuracy))
        if improved:
            best_file = self.backup_dir / f"best-epoch{epoch + 1}.weights.h5"
            with _ema_swapped_in(self.model.optimizer, self.ema):
                self.model.save_weights(best_file)
            state["best_weights"] = best_file.name
            if self.validated:
                state["best_val_accuracy"] = self.best_accuracy = accuracy
        tmp = self.backup_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.backup_dir / "state.json")
        if improved:
            os.replace(best_file, self.best)
        for old in self.backup_dir.glob("*.weights.h5"):
            if old != weights:
                old.unlink()

    @staticmethod
    def restore(model: keras.Model, backup_dir: Path, best: Path) -> int:
        """Load the last backed-up epoch into `model` (compiled); returns the number of finished epochs."""
        meta = runfiles.backup_state(Path(backup_dir).parent)
        if meta is None:
            return 0
        pending = Path(backup_dir) / meta.get("best_weights", "-")
        if pending.is_file():  # killed after the state was written, before the best file was renamed into place
            os.replace(pending, best)
        model.optimizer.build(model.trainable_variables)
        model.load_weights(Path(backup_dir) / meta["weights"])
        return int(meta["epoch"])


class _ema_swapped_in:
    """Within the block the model holds the EMA weights (and the optimizer the raw ones); a no-op without EMA."""

    def __init__(self, optimizer, ema: bool):
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # mixed_float16: inside a LossScaleOptimizer
        self.pairs = list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average)) if ema else []

    def _swap(self):
        for var, average in self.pairs:
            raw = keras.ops.convert_to_numpy(var)
            var.assign(average)
            average.assign(raw)

    def __enter__(self):
        self._swap()

    def __exit__(self, *exc):
        self._swap()


def finished_epochs(fold_dir: Path) -> int:
    """Epochs saved in the fold's backup; history.csv is cut to match (a kill can fall between the two), or, when
    it is damaged or short, rewritten from the epochs' logs that the backup keeps."""
    state = runfiles.backup_state(fold_dir)
    history = fold_dir / "history.csv"
    if state is None:
        history.unlink(missing_ok=True)
        return 0
    done = int(state["epoch"])
    try:
        runfiles.read_history(history, runfiles.retrain_fix(fold_dir), rows=done)
    except (runfiles.Damaged, FileNotFoundError) as err:
        problem = getattr(err, "problem", "missing")
        if len(state.get("history", [])) != done:  # a backup written before backups kept the logs
            raise runfiles.Damaged(history, problem, runfiles.retrain_fix(fold_dir)) from None
        runfiles.write_history(history, state["history"])
        say(f"{history}: {problem}; rewritten from the {done} epochs its backup keeps")
        return done
    lines = history.read_text().splitlines()
    if len(lines) > 1 + done:
        runfiles.write_text(history, "\n".join(lines[: 1 + done]) + "\n")
    return done


def _read_history(path: Path, fix: str) -> dict[str, list[float]]:
    """history.csv's columns; damaged, or without a val_accuracy to pick the best epoch from, it names `fix`."""
    history = runfiles.read_history(path, fix)
    if not history.get("val_accuracy"):
        raise runfiles.Damaged(path, "no epoch with a val_accuracy", fix)
    return history


def _optimizer(cfg: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    t = cfg.train
    total = max(1, t.epochs * steps_per_epoch)
    warmup = min(t.warmup_epochs * steps_per_epoch, total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=t.min_learning_rate if warmup else t.learning_rate,
        decay_steps=total - warmup, alpha=t.min_learning_rate / t.learning_rate,
        warmup_target=t.learning_rate if warmup else None, warmup_steps=warmup,
    )
    common = dict(learning_rate=schedule, weight_decay=t.weight_decay, use_ema=t.ema, ema_momentum=t.ema_momentum,
                  global_clipnorm=t.clip_norm if t.clip_norm > 0 else None)
    classes = {"lion": keras.optimizers.Lion, "adamw": keras.optimizers.AdamW, "radam": optimizers.RAdam}
    if t.optimizer not in classes:
        raise KitError(f"train.optimizer={t.optimizer!r} is not known; use one of {', '.join(classes)}")
    if t.optimizer == "radam":
        # The 1st place's decay schedule: the learning rate's, times weight_decay (decay_schedule, cell 18).
        common.update(sma_threshold=t.radam_sma_threshold, weight_decay=keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=schedule.initial_learning_rate * t.weight_decay, decay_steps=total - warmup,
            alpha=schedule.alpha, warmup_target=t.learning_rate * t.weight_decay if warmup else None,
            warmup_steps=warmup))
    if t.lookahead_sync > 0:
        return optimizers.lookahead(classes[t.optimizer])(sync_period=t.lookahead_sync,
                                                          slow_step_size=t.lookahead_alpha, **common)
    return classes[t.optimizer](**common)


def _write_folds(path: Path, cache: "Cache", folds: np.ndarray) -> None:
    rows = ["sequence_id,participant_id,fold"]
    rows += [f"{s},{p},{f}" for s, p, f in zip(cache.sequence_ids, cache.participant_ids, folds)]
    path.write_text("\n".join(rows) + "\n")
