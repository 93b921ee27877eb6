"""The published recipes, setting by setting, each with where it comes from: `--recipe NAME`.

A recipe named after a placing in the competition is that team's recipe: every setting it changes from the kit's
defaults names its source (a cell of a notebook, a line of a write-up, a file of a team's code) or says it is the
kit's choice and why, and what the kit cannot do as the source did is listed as a departure with its reason.
`kit config --recipe NAME` prints them; kit.config builds a recipe's Config from `settings`.

Sources, read at these commits:
- 1st place: hoyso48/Google---Isolated-Sign-Language-Recognition-1st-place-solution, ISLR_1st_place_Hoyeol_Sohn.ipynb
  (commit 4bfc9db), and the AWP it imports, hoyso48/tf-utils, tf_utils/learners.py. "cell N" is the notebook's
  N-th code cell counting from 0.
- 26th place: dajes/asl-signs, README.md, the write-up (commit 5e175ac), and the code beside it where the write-up
  is silent.
- 80th place: the kit's earlier summary of its write-up, kept as it was; not yet checked against the write-up.
"""

from __future__ import annotations

from dataclasses import dataclass

NOTEBOOK_1ST = "hoyso48/Google---Isolated-Sign-Language-Recognition-1st-place-solution @4bfc9db, the notebook"
WRITEUP_26TH = "dajes/asl-signs @5e175ac, README.md (the write-up)"


@dataclass(frozen=True)
class Setting:
    key: str  # a --set key
    value: object
    source: str  # where the value comes from, or "kit's choice: why"


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    source: str
    settings: tuple[Setting, ...]
    departures: tuple[str, ...] = ()  # where the kit does not do what the source did, and why
    submission: str = ""  # how the source built its submission, as kit commands

    def overrides(self) -> list[str]:
        """The recipe as `--set` strings."""
        import json

        return [f"{s.key}={json.dumps(s.value)}" for s in self.settings]


def _s(key: str, value, source: str) -> Setting:
    return Setting(key, value, source)


CONV1ST = Recipe(
    name="conv1st",
    title="1st place (Hoyeol Sohn): Conv1D + ECA blocks with transformer blocks",
    source=NOTEBOOK_1ST,
    settings=(
        _s("model.name", "conv_transformer", "cells 14-16: get_model(dim=192), 2 x [3 Conv1DBlock + "
           "TransformerBlock], late dropout 0.8"),
        _s("preprocess.points", "1st", "cell 7: POINT_LANDMARKS = LIP (40) + LHAND + RHAND + NOSE (4) + REYE (16) + "
           "LEYE (16); POSE left out"),
        _s("preprocess.center", "face17", "cell 7, Preprocess: the mean of landmark 17 over the sequence, 0.5 "
           "where it is never seen"),
        _s("preprocess.scale", "axis_std", "cell 7, Preprocess: tf_nan_std about that centre over frames and "
           "points, per axis"),
        _s("preprocess.use_z", False, "cell 7, Preprocess: x[..., :2]"),
        _s("preprocess.diffs", 2, "cell 7, Preprocess: dx (t+1 - t) and dx2 (t+2 - t), zero-padded at the end: "
           "6 x 118 = 708 channels"),
        _s("preprocess.drop_frames", "empty", "cell 8, filter_nans_tf: frames where every POINT_LANDMARKS "
           "coordinate is NaN"),
        _s("preprocess.max_len", 384, "cells 7 and 19: MAX_LEN = 384, CFG.max_len = 384"),
        _s("preprocess.long", "first", "cell 7, Preprocess: x[:, :max_len] (training crops first: random_crop)"),
        _s("train.random_crop", True, "cell 8, augment_fn: temporal_crop(x, max_len) in training"),
        _s("train.resample_prob", 0.8, "cell 8, augment_fn: resample(x, (0.5, 1.5)) with p 0.8; interp1d_ picks "
           "bilinear (p 0.33), else bicubic or nearest"),
        _s("train.resample_min", 0.5, "cell 8, augment_fn"),
        _s("train.resample_max", 1.5, "cell 8, augment_fn"),
        _s("train.mirror_prob", 0.5, "cell 8, augment_fn: flip_lr with p 0.5 (hands, lips, eyes, nose, pose)"),
        _s("train.affine_prob", 0.75, "cell 8, augment_fn: spatial_random_affine with p 0.75"),
        _s("train.affine_scale", 0.2, "cell 8, spatial_random_affine: scale=(0.8, 1.2)"),
        _s("train.affine_shear", 0.15, "cell 8, spatial_random_affine: shear=(-0.15, 0.15) on x or on y"),
        _s("train.affine_degrees", 30.0, "cell 8, spatial_random_affine: degree=(-30, 30)"),
        _s("train.affine_shift", 0.1, "cell 8, spatial_random_affine: shift=(-0.1, 0.1)"),
        _s("train.temporal_mask_prob", 0.5, "cell 8, augment_fn: temporal_mask(size=(0.2, 0.4)) with p 0.5, NaN"),
        _s("train.temporal_mask_min", 0.2, "cell 8, temporal_mask"),
        _s("train.temporal_mask_max", 0.4, "cell 8, temporal_mask"),
        _s("train.spatial_mask_prob", 0.5, "cell 8, augment_fn: spatial_mask(size=(0.2, 0.4)) with p 0.5, NaN"),
        _s("train.spatial_mask_min", 0.2, "cell 8, spatial_mask"),
        _s("train.spatial_mask_max", 0.4, "cell 8, spatial_mask"),
        _s("train.mixup_alpha", 0.0, "cells 8 and 18: no mixup anywhere"),
        _s("train.optimizer", "radam", "cell 18: tfa.optimizers.RectifiedAdam(learning_rate=schedule, "
           "weight_decay=decay_schedule, sma_threshold=4)"),
        _s("train.radam_sma_threshold", 4.0, "cell 18: sma_threshold=4"),
        _s("train.lookahead_sync", 5, "cell 18: tfa.optimizers.Lookahead(opt, sync_period=5)"),
        _s("train.lookahead_alpha", 0.5, "cell 18: Lookahead's slow_step_size, TF Addons' default 0.5"),
        _s("train.batch_size", 512, "cell 19: batch_size = 64 * replicas, replicas = 8 (a TPU v2-8)"),
        _s("train.learning_rate", 4e-3, "cell 19: lr = 5e-4 * replicas"),
        _s("train.min_learning_rate", 1e-6, "cell 19: lr_min = 1e-6, decay_type 'cosine'"),
        _s("train.warmup_epochs", 0, "cell 19: warmup = 0"),
        _s("train.weight_decay", 0.1, "cells 18-19: weight_decay = 0.1, the decay schedule = the lr schedule "
           "x 0.1, applied as RectifiedAdam applies it"),
        _s("train.epochs", 300, "cell 19: epoch = 300"),
        _s("train.label_smoothing", 0.1, "cell 18: CategoricalCrossentropy(label_smoothing=0.1)"),
        _s("train.ema", False, "cells 18-19: no moving average of the weights (nor SWA: CFG.swa_epochs = [])"),
        _s("train.awp_lambda", 0.2, "cell 19: awp = True, awp_lambda = 0.2; cell 18: AWP(delta=0.2, eps=0.)"),
        _s("train.awp_start_epoch", 15, "cell 19: awp_start_epoch = 15"),
        _s("train.late_dropout_epoch", 15, "cell 19: dropout_start_epoch = 15"),
        _s("train.seed", 42, "cell 19: seed = 42 (the four full fits: 42, 43, 44, 45, cells 21-24)"),
    ),
    departures=(
        "precision: float32 by default, as every kit recipe (the notebook: fp16 = True, mixed_bfloat16 on its "
        "TPU): the right one depends on the machine; add --set train.precision=mixed_bfloat16 on a TPU or an "
        "Ampere GPU, mixed_float16 on a T4",
        "folds keep the epoch with the best accuracy on the held-out signers (the notebook kept the best "
        "val_loss, cell 18); the full fits keep the last epoch, as its 'all' fold did",
        "an epoch is ceil(n / batch) batches of an endlessly reshuffled stream (the notebook: n // batch, a "
        "32,768-sequence shuffle buffer): at most one batch more an epoch",
        "resample: each landmark is resized along time on its own (the notebook resizes [T, 543, 3] as an "
        "image, and its bicubic kernel (one draw in three) then carries a missing neighbouring landmark's NaN into a "
        "seen point, e.g. eye point 466 beside a missing left hand); where the notebook's values are finite "
        "they are the same",
        "padding is a mask the model reads (the notebook padded with -100 and a Masking layer): the same frames "
        "count",
        "BatchNorm takes its training statistics from the real frames only (kit's choice: padding must not "
        "change a sequence's answer)",
        "folds: the notebook's are the files of its '5fold' TFRecord set (the notebook does not say how they "
        "were split); kit train's group the sequences by signer",
        "XLA: the notebook compiles everything (cell 18: set_jit(True)); train.jit_compile=auto does under JAX "
        "and on a GPU or TPU, not under TensorFlow on a CPU, where XLA compiles these models slowly for no speed",
    ),
    submission="kit train --full --from-cv RUN --seeds 4, then kit export RUN: the four full-data seeds "
               "(train.seed 42..45) averaged in one graph (cells 21-24)",
)

LLAMA26 = Recipe(
    name="llama26",
    title="26th place (dajes): LLaMa-style transformer, three small ones ensembled",
    source=WRITEUP_26TH,
    settings=(
        _s("model.name", "llama_small", "write-up: 'Ensemble of 3 models ... 2 heads 6 layers 1.7M parameters per "
           "model'; 'head dimensions are set to 64'"),
        _s("model.dropout", 0.1, "write-up, Training: 'Dropout 0.1'"),
        _s("model.head_dropout", 0.1, "write-up, Training: 'Dropout 0.1' (the kit's llama presets default to "
           "0.2 on the pooled vector)"),
        _s("preprocess.max_len", 512, "write-up: 'All models are trained to support sequences of up to 512 "
           "frames'"),
        _s("preprocess.use_z", False, "write-up: 'Only 2d coordinates are used'"),
        _s("preprocess.points", "kit", "write-up: 'All (21) hand keypoints, 26 face keypoints, 17 pose "
           "keypoints'; which 26 face points (20 lips, 6 eyes) is the kit's reading of its picture"),
        _s("preprocess.center", "head", "write-up: 'all keypoints are shifted so that head is located at the "
           "origin'; the nose tip's mean over the sequence is the kit's choice of 'head'"),
        _s("preprocess.scale", "none", "write-up: 'Scaling did not provide any benefit so not used'"),
        _s("preprocess.drop_frames", "none", "write-up: no frame filter; 'All nans are replaced with 0 after "
           "normalization' (kit's reading: every frame kept)"),
        _s("preprocess.long", "subsample", "kit's choice (the write-up is silent): evenly spaced frames past 512"),
        _s("train.optimizer", "lion", "write-up, Training: 'Lion optimizer is used'"),
        _s("train.learning_rate", 1e-4, "write-up, Training: 'LR is 1e-4 with cosine decay to 1e-5'"),
        _s("train.min_learning_rate", 1e-5, "write-up, Training"),
        _s("train.warmup_epochs", 0, "write-up: cosine decay from 1e-4 (its code, module.py: "
           "CosineAnnealingWarmRestarts, no warm-up)"),
        _s("train.batch_size", 128, "write-up, Training: 'Batch size 128'"),
        _s("train.weight_decay", 1e-3, "its code (the write-up is silent): constants.py WEIGHT_DECAY = 1e-4, "
           "module.py gives Lion WEIGHT_DECAY * 10"),
        _s("train.epochs", 100, "its code (the write-up is silent): constants.py EPOCHS = 100"),
        _s("train.ema", True, "write-up, Training: 'Exponential moving average of weights ... 2-4% accuracy "
           "boost on CV'"),
        _s("train.ema_momentum", 0.9999, "its code (the write-up is silent): experimental/ema.py, decay=0.9999"),
        _s("train.mixup_alpha", 0.5, "write-up, Augmentations: 'The most important is mixup ... alpha=0.5'"),
        _s("train.mirror_prob", 0.5, "write-up: 'Mirroring ... can't hurt to use' (the probability, 0.5, is the "
           "kit's)"),
        _s("train.label_smoothing", 0.0, "write-up, Did not work: 'Label smoothing. Slower convergence and worse "
           "final result on CV'"),
        _s("train.clip_norm", 1.0, "its code (the write-up is silent): train.py, gradient_clip_val=1."),
    ),
    departures=(
        "EMA: Keras averages at 0.9999 from the first step; the 26th place's EMA (timm's) ramps its decay as "
        "min(0.9999, (1 + n) / (10 + n)), so its average follows the weights closely early on",
        "readout: a masked mean over the frames (its code reads a class token and adds learned positions): exact "
        "under padding and on the exported graph's real frames",
        "precision: float32 by default (its code trained in bf16-mixed): add --set "
        "train.precision=mixed_bfloat16 on a TPU or an Ampere GPU",
        "folds and the best epoch: kit train's GroupKFold by signer, the epoch with the best accuracy on the "
        "held-out signers (its code kept the best val/acc too, on its own split)",
    ),
    submission="kit train --recipe llama26 --folds 5, then kit export RUN --top 3: three models averaged, "
               "as the write-up's ensemble of 3",
)

_MLP80 = "the kit's earlier summary of the 80th place's write-up (not yet re-read against the write-up)"
MLP80 = Recipe(
    name="mlp80",
    title="80th place: an FC network over engineered features",
    source=_MLP80,
    settings=tuple(_s(key, value, _MLP80) for key, value in (
        ("model.name", "mlp"), ("preprocess.dominant_hand", True), ("preprocess.shoulder_unit", True),
        ("preprocess.distances", True), ("preprocess.angles", True), ("preprocess.motion", True),
        ("preprocess.trim_idle", True), ("train.optimizer", "adamw"), ("train.learning_rate", 1e-3),
        ("train.rotate_deg", 10.0), ("train.scale_range", 0.1), ("train.noise_std", 0.005))),
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (LLAMA26, CONV1ST, MLP80)}
