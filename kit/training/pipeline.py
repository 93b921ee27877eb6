"""The tf.data input pipeline over the prepared cache: shuffle, augment, the shared preprocessing, batch, prefetch.

No Python runs per sequence: the landmarks live in RAM as one tensor, and every step (the shuffle, the read,
the augmentations, the preprocessing, mixup) is a TF op running in tf.data's own thread pool, in parallel
across cores.

Memory plan. Training keeps in RAM only the landmarks that preprocessing can read (`RESIDENT`: both hands,
lips, eyes, nose and upper body of both point sets, closed under the left-right mirror): 135 of the 543 points,
as float32. The full competition set (94,477 sequences, about 3.6 million frames) takes 3.6e6 x 135 x 3 x 4
bytes = 5.8 GB (every point in float16 would be 11.7 GB), loaded once per `Cache` into one numpy buffer that tf.data then reads
in place (no second copy), shared by all folds and the validation set, read in chunks so that the cache's
11.7 GB of shards never count as the process' memory. The augmentations and the one preprocessing function
run on these 135 columns (`layout=RESIDENT`): the same ops as in the exported graph, indexing the columns where
those landmarks sit.

Order. A training dataset is one endless stream: pass p holds every index once, in the order of a stateless
shuffle seeded by (seed, p), and the stream is cut into full batches; an epoch is `steps_per_pass` of them. A
resumed run starts the stream at the step it stopped at and sees the batches it would have seen. The
augmentations (kit.preprocessing.augment.chain) draw from (sequence, pass, seed), mixup from (step, seed). Evaluation datasets are one pass in the
order of `indices`.

Replicas. Batches are global (kit.training.distribute). Training batches are always full; an evaluation pass keeps every
sequence, and on N replicas its last batch is padded to a multiple of N with copies of its last sequence carrying
sample weight 0 (`eval_padding`): validation accuracy (a weighted metric) ignores them, predictions drop them
(`predict`). Keras' validation loss divides by the padded count: at most replicas - 1 rows, so it reads low by at
most that share (7 in the ~3,800 sequences of a real fold: 0.2 %); the best epoch is picked by accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from kit.preprocessing import augment
from kit.data.cache import DTYPE, FRAME_BYTES, SHARDS, Cache
from kit.config import Config
from kit.errors import KitError
from kit.data.landmarks import N_LANDMARKS
from kit.preprocessing.preprocess import keep_frames, preprocess
from kit.progress import track


RESIDENT = augment.resident_landmarks()  # 135 points
ALIGN = 64  # bytes: TensorFlow's CPU allocator alignment (EIGEN_MAX_ALIGN_BYTES), which DLPack import checks


def steps_per_pass(n_sequences: int, batch_size: int) -> int:
    """Batches in one pass over `n_sequences` (the last batch may be short)."""
    return max(1, math.ceil(n_sequences / batch_size))


def steps_per_epoch(cfg: Config, n_sequences: int, batch_size: int) -> int:
    """Batches in one training epoch: `train.steps_per_epoch`, or one pass when it is 0."""
    if cfg.train.steps_per_epoch < 0:
        raise KitError(f"train.steps_per_epoch must be 0 (one pass) or more, got {cfg.train.steps_per_epoch}")
    return cfg.train.steps_per_epoch or steps_per_pass(n_sequences, batch_size)


class Resident:
    """The landmarks of every cached sequence that preprocessing can read, in RAM as one float32 tensor.

    Read shard by shard in chunks with plain reads, not through the memory maps: mapped pages count as the
    process' resident memory for as long as they stay mapped (9 GB more at full scale). float32, not the
    cache's float16: a half-precision Cast in tf.data makes oneDNN log an error line on CPUs without AVX-512,
    and 5.8 GB for the full data set is still far under any training machine's RAM.
    """

    CHUNK_FRAMES = 65_536  # 213 MB of float16 read at a time

    def __init__(self, cache: Cache):
        shard_frames = np.asarray(cache._shard_frames, dtype=np.int64)
        shard_start = np.concatenate([[0], np.cumsum(shard_frames)])
        frames = _aligned_empty((int(shard_start[-1]), len(RESIDENT), 3))
        chunks = [(s, f) for s, n in enumerate(shard_frames) for f in range(0, int(n), self.CHUNK_FRAMES)]
        label = f"Loading landmarks into memory ({frames.nbytes / 1e9:.1f} GB)"
        for shard, first in (chunks if len(frames) < 1_000_000 else track(chunks, label)):
            count = min(self.CHUNK_FRAMES, int(shard_frames[shard]) - first)
            path = cache.path / SHARDS / f"{cache._shard_names[shard]}.bin"
            raw = np.fromfile(path, dtype=DTYPE, count=count * N_LANDMARKS * 3, offset=first * FRAME_BYTES)
            at = int(shard_start[shard]) + first
            frames[at:at + count] = raw.reshape(count, N_LANDMARKS, 3)[:, RESIDENT]
        starts = shard_start[cache._shard] + cache._offsets
        with tf.device("/CPU:0"):
            # Handed over without a copy (DLPack shares the buffer): tf.constant copied it, holding the landmarks
            # two or three times over while it did (the datasets then read it in place: see _in_place).
            self.frames = tf.experimental.dlpack.from_dlpack(frames.__dlpack__())
            self.starts = tf.constant(starts.astype(np.int64))
            self.lengths = tf.constant(cache.lengths.astype(np.int64))
            self.labels = tf.constant(cache.labels.astype(np.int32))

    @property
    def nbytes(self) -> int:
        return int(self.frames.shape[0]) * len(RESIDENT) * 3 * 4

    def sequence(self, i: tf.Tensor) -> tf.Tensor:
        """Sequence `i` as float32 `[T, len(RESIDENT), 3]` (the landmarks of `RESIDENT`), NaN where missing."""
        start = self.starts[i]
        return self.frames[start:start + self.lengths[i]]


def _aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array whose buffer starts on a 64-byte boundary: TensorFlow takes a buffer over
    from DLPack only when it is aligned as its own allocator aligns (numpy's large arrays sit 16 bytes past a
    page)."""
    nbytes = int(np.prod(shape)) * 4
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip:skip + nbytes].view(np.float32).reshape(shape)


def resident(cache: Cache) -> Resident:
    """The cache's landmarks in RAM, loaded on first use and shared by every dataset over that cache."""
    if getattr(cache, "_resident", None) is None:
        cache._resident = Resident(cache)
    return cache._resident


def training_order(indices: np.ndarray, seed: int, skip: int = 0) -> tf.data.Dataset:
    """The endless stream of `(index, pass)` that training reads, from its `skip`-th element on.

    Pass p is every index once, in the order of a stateless shuffle seeded by (seed, p): a pure function of
    the seed, so a resumed run can start anywhere in it without replaying what came before.
    """
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    first_pass, skip = divmod(int(skip), n)
    order, seed = tf.constant(indices), tf.constant(seed, tf.int64)

    def one_pass(epoch):
        shuffled = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([seed, epoch]))
        return tf.data.Dataset.from_tensor_slices((shuffled, tf.fill([n], epoch)))

    return tf.data.Dataset.range(first_pass, 1 << 62).flat_map(one_pass).skip(skip)


def eval_padding(n_sequences: int, replicas: int) -> int:
    """Rows to append to an evaluation pass of `n_sequences` so that its last batch splits evenly over `replicas`
    (every other batch is the global batch, already a multiple of `replicas`)."""
    return -n_sequences % replicas


def predict(model, dataset: tf.data.Dataset, n_sequences: int) -> np.ndarray:
    """The model's outputs for the `n_sequences` real rows of an evaluation dataset, padding rows dropped."""
    out = np.asarray(model.predict(dataset, verbose=0))
    if len(out) < n_sequences:
        raise KitError(f"predictions for {len(out)} of {n_sequences} sequences: the evaluation pass lost some")
    return out[:n_sequences]


def make_dataset(cache: Cache, indices: np.ndarray, cfg: Config, training: bool, n_classes: int | None = None,
                 start_pass: int = 0, batch_size: int | None = None, replicas: int = 1) -> tf.data.Dataset:
    """Batches of `({"features", "mask"}, one_hot_labels)` (evaluation: with sample weights) for the cache rows
    `indices`.

    Training: an endless stream of passes over `indices`, each reshuffled from `cfg.train.seed`, augmented as
    `cfg.train` sets (kit.preprocessing.augment.chain), batched and mixed with `cfg.train.mixup_alpha`;
    an epoch is `steps_per_epoch(cfg, len(indices), batch_size)` batches (one pass by default, so an epoch ends
    a few sequences into the next pass, as with `repeat().batch()`). `start_pass` is the number of epochs a
    resumed run has done: the stream starts where they stopped. Evaluation: one pass in the order of `indices`,
    `(inputs, labels, weights)`, the last batch padded for `replicas` with rows of weight 0 (`eval_padding`).
    """
    data = resident(cache)
    n_classes = n_classes or cfg.model.n_classes  # labels one-hot over the model's outputs
    indices = np.asarray(indices, dtype=np.int64)
    batch_size = batch_size or cfg.train.batch_size
    t = cfg.train
    seed = tf.constant(t.seed, tf.int64)

    def example(i, epoch):
        # Frames are dropped before the augmentations, so a frame an augmentation masks is trained on as a
        # frame with nothing seen (the 1st place's order), not dropped.
        frames = keep_frames(data.sequence(i), cfg.preprocess, RESIDENT)
        if training:  # the parameters drawn are for kit show --augment; unused here, their ops are pruned
            frames, _ = augment.chain(frames, cfg, i * 1000 + epoch, RESIDENT)
        features, mask = preprocess(frames, cfg.preprocess, RESIDENT, frames_dropped=True)
        return {"features": features, "mask": mask}, tf.one_hot(tf.gather(data.labels, i), n_classes)

    if not training:
        pad = eval_padding(len(indices), replicas)
        weights = np.concatenate([np.ones(len(indices)), np.zeros(pad)]).astype(np.float32)
        padded = np.concatenate([indices, np.repeat(indices[-1:], pad)])
        ds = tf.data.Dataset.from_tensor_slices((padded, np.zeros_like(padded), weights))
        ds = ds.map(lambda i, e, w: (*example(i, e), w), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return _in_place(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))

    first_step = start_pass * steps_per_epoch(cfg, len(indices), batch_size)
    ds = training_order(indices, t.seed, first_step * batch_size)
    # Batch the indices first, then build each batch's examples in one map call (tf.map_fn over its
    # sequences), batches in parallel: measured on 2 cores, 1.96x the 1-core rate where a map per sequence
    # reached 1.62x (each of its calls is a hand-over between threads, and those do not scale).
    signature = ({"features": tf.float32, "mask": tf.float32}, tf.float32)
    ds = ds.batch(batch_size, drop_remainder=True).map(
        lambda i, e: tf.map_fn(lambda pair: example(*pair), (i, e), fn_output_signature=signature),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if t.mixup_alpha > 0:
        ds = ds.enumerate(first_step).map(
            lambda step, batch: augment.mixup(*batch, t.mixup_alpha, tf.stack([step, seed])),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _in_place(ds.prefetch(tf.data.AUTOTUNE))


def _in_place(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` without tf.data's default graph rewrites. A rewrite serialises the pipeline with every tensor its
    functions capture, so each iterator would hold its own copy of the resident landmarks (measured: +1.8 GB at
    half scale, 3.5 GB at full). The pipeline sets its parallelism and prefetching itself, and AUTOTUNE still
    tunes them at run time."""
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return ds.with_options(options)
