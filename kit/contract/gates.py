"""The Kaggle contract as gates: every reason a submission failed after an hour on Kaggle, caught in seconds here.

Each gate returns a `Gate` (name, ok, one-line detail, numbers for export.json). `check_model` runs them all
on a TFLite flatbuffer; `kit export` and `kit check` report them and refuse a model that fails one.

The gates judge what Kaggle's scorer judged: it calls the `serving_default` runner with `inputs` of each sequence's
real length and takes the argmax of `outputs`. So a model is refused when running it breaks that (no such
signature, not 250 finite values for a real input, too large, too slow, ops TFLite 2.9.1 cannot run), and not for
how it declares its shapes: an output declared `[-1]` that returns 250 values passes, with a note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from kit.contract import opcheck
from kit.contract import tflite
from kit.errors import KitError
from kit.data.landmarks import FACE, LEFT_HAND, N_CLASSES, N_LANDMARKS, RIGHT_HAND

SIZE_LIMIT_MB = 40.0  # the competition's limit on model.tflite
LATENCY_LIMIT_MS = 100.0  # the competition's limit on the mean time per sequence
# kit export --budget-ms holds the measured mean times this: Kaggle's scoring CPU is of unknown speed, and a
# timing on a shared machine moves by a third from run to run (the machine the kit is built on, 2 cores).
BUDGET_SAFETY = 1.5
PARITY_TOLERANCE = {False: 1e-4, True: 1e-2}  # max |p_tflite - p_keras| for float32 / float16 weights
N_PROBES = 50


@dataclass(frozen=True)
class Gate:
    name: str
    ok: bool
    detail: str
    data: dict = field(default_factory=dict)
    blocking: bool = True  # False: a failure is reported, never refused (an own vocabulary is not a submission)

    def __str__(self) -> str:
        return f"  {'ok  ' if self.ok else 'FAIL' if self.blocking else 'note'}  {self.name}: {self.detail}"

    def to_dict(self) -> dict:
        return asdict(self)


def signature_gate(interp, n_classes: int = N_CLASSES) -> Gate:
    problems = tflite.contract_problems(interp, n_classes)
    if problems:
        return Gate("signature", False, "; ".join(problems))
    note = tflite.output_note(interp)
    return Gate("signature", True, f"{tflite.SIGNATURE}: {tflite.INPUT} float32 [None, {N_LANDMARKS}, 3] -> "
                                   f"{tflite.OUTPUT} [{n_classes}]" + (f"; note: {note}" if note else ""),
                {"note": note} if note else {})


def ops_gate(model: bytes) -> Gate:
    """Builtin ops only, each at a version the scorer's TFLite 2.9.1 registers (see kit.contract.opcheck)."""
    ops = opcheck.model_ops(model)
    listing = ", ".join(str(op) for op in ops)
    problems = [p for op in ops for p in op.problems]
    data = {"ops": [{"name": op.name, "version": op.version, "custom": op.custom} for op in ops]}
    if problems:
        return Gate("ops", False, "; ".join(problems), data)
    return Gate("ops", True, f"{len(ops)} builtin ops, all run by TFLite {opcheck.RUNTIME}: {listing}", data)


def size_gate(model: bytes, limit_mb: float = SIZE_LIMIT_MB) -> Gate:
    mb = len(model) / 1e6
    data = {"size_mb": round(mb, 3), "limit_mb": limit_mb}
    if mb > limit_mb:
        return Gate("size", False, f"{mb:.2f} MB is over the {limit_mb:g} MB limit (try --fp16 or fewer models)", data)
    return Gate("size", True, f"{mb:.2f} MB of {limit_mb:g} MB", data)


def real_lengths(n: int = N_PROBES, seed: int = 0) -> list[int]:
    """Sequence lengths shaped like the competition's: `kit synth --like-competition`'s length model (median ~33
    frames, a long tail), with the extremes 1 and 500 frames first and last. The graph runs on the real frames
    only, so latency depends on this distribution; the scorer's input shape changes from call to call too."""
    from kit.data.rehearsal import frame_counts

    lengths = frame_counts(np.random.default_rng(seed), n - 2)
    return [1, *(int(k) for k in lengths), 500]


def parity_lengths(max_lens: list[int]) -> list[int]:
    """Lengths where an unpadded graph could part from the padded model: the shortest, no padding at all, one
    frame of padding, and subsampling (max_len + 1, 500), for every max_len of the ensemble."""
    edges = {1, 2, 7, 500}
    for m in max_lens:
        edges |= {m - 1, m, m + 1}
    return sorted(k for k in edges if k >= 1)


def plausible_frames(rng: np.random.Generator, n: int, hands: bool = True) -> np.ndarray:
    """A raw sequence with the competition's NaN pattern: a slowly moving body, the left hand out of view."""
    base = rng.uniform(0.3, 0.7, size=(1, N_LANDMARKS, 3))
    drift = np.cumsum(rng.normal(0, 0.01, size=(n, 1, 3)), axis=0)
    frames = (base + drift + rng.normal(0, 0.02, size=(n, N_LANDMARKS, 3))).astype(np.float32)
    frames[:, list(LEFT_HAND)] = np.nan
    if not hands:
        frames[:, list(RIGHT_HAND)] = np.nan
    return frames


def probe_sequences(n: int = N_PROBES, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [plausible_frames(rng, length) for length in real_lengths(n, seed)]


def call_times(model: bytes, sequences: list[np.ndarray], xnnpack: bool, n_classes: int = N_CLASSES) -> np.ndarray:
    """Milliseconds of each call of the signature runner on one thread, in order, as the scorer calls it: the
    input's shape changes from call to call, so every call of a new length resizes and reallocates."""
    predict = tflite.contract_runner(tflite.interpreter(model, threads=1, xnnpack=xnnpack), n_classes=n_classes)
    predict(sequences[0])  # the first call allocates; Kaggle's timer sees it once, not per sequence
    times = []
    for frames in sequences:
        start = time.perf_counter()
        predict(frames)
        times.append((time.perf_counter() - start) * 1000)
    return np.asarray(times)


def budget_room(mean_ms: float, members: int, budget_ms: float, safety: float = BUDGET_SAFETY) -> int:
    """How many more members like these fit: the mean times `safety` must stay within `budget_ms`, and a member
    costs its share of the mean (the shared preprocessing counted in it, so the answer errs low). Negative when
    the ensemble itself is over: -1 means one member too many."""
    per_member = mean_ms / max(members, 1)
    return int(np.floor(budget_ms / safety / max(per_member, 1e-9))) - members


def latency_gate(model: bytes, sequences: list[np.ndarray], limit_ms: float = LATENCY_LIMIT_MS,
                 budget_ms: float | None = None, members: int = 1, n_classes: int = N_CLASSES) -> Gate:
    """Mean and p95 ms per sequence on one thread, with plain builtin kernels and with the XNNPACK delegate; the
    gate holds plain kernels to the limit (tflite.SCORER_KERNELS says why) and reports XNNPACK beside them, with
    whether the scorer's runtime could delegate the graph at all (tflite.sized_when_run). With `budget_ms`
    (kit export --budget-ms) it holds the plain mean times BUDGET_SAFETY to the budget instead, and says how
    many more of `members` would fit.
    """
    data = {}
    for label, xnnpack in (("builtin", False), ("xnnpack", True)):
        times = call_times(model, sequences, xnnpack, n_classes)
        data[label] = {"mean_ms": round(float(np.mean(times)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3)}
    late, origins = tflite.sized_when_run(model)
    judged = data[tflite.SCORER_KERNELS]
    ms = judged["mean_ms"]
    detail = (f"mean {ms:.2f} ms, p95 {judged['p95_ms']:.2f} ms with plain kernels, as the scorer's runtime runs a "
              f"length that changes from call to call (limit {limit_ms:.0f} ms; {len(sequences)} sequences of "
              f"1-{max(len(s) for s in sequences)} frames, 1 thread); mean {data['xnnpack']['mean_ms']:.2f} ms with "
              f"XNNPACK in a newer runtime")
    if late:
        detail += (f"; the scorer's runtime cannot delegate this graph to XNNPACK at all: {late} tensors are sized "
                   f"only while it runs (from {', '.join(origins)})")
    data.update(limit_ms=limit_ms, judged=tflite.SCORER_KERNELS, sized_when_run=late)
    ok = ms <= limit_ms
    if budget_ms is not None:
        more = budget_room(ms, members, budget_ms)
        data.update(budget_ms=budget_ms, safety=BUDGET_SAFETY, members=members, more_members=max(more, 0))
        ok = more >= 0
        if ok:
            detail += (f"; budget {budget_ms:g} ms with safety x{BUDGET_SAFETY:g}: room for {more} more member"
                       f"{'' if more == 1 else 's'} like the {members} in it")
        else:
            detail = (f"mean {ms:.2f} ms with plain kernels (as the scorer runs) x{BUDGET_SAFETY:g} safety = "
                      f"{ms * BUDGET_SAFETY:.1f} ms breaks the budget of {budget_ms:g} ms: drop {-more} of the "
                      f"{members} members or raise --budget-ms")
    elif not ok:
        detail += "; over the limit: export fewer members (kit export --top N)"
    return Gate("latency", ok, detail, data)


def parity_gate(predict: Callable, reference: Callable, sequences: list[np.ndarray], fp16: bool) -> Gate:
    """The TFLite file (real frames only) answers like the padded Keras ensemble it came from: probabilities and
    argmax. float32: argmax agrees on every sequence; float16 may flip near-ties (the rounding of the weights)."""
    tolerance = PARITY_TOLERANCE[fp16]
    diffs, agree, real_flips = [], 0, 0
    for frames in sequences:
        got, want = np.asarray(predict(frames)), np.asarray(reference(frames))
        diffs.append(float(np.abs(got - want).max()))
        same = np.argmax(got) == np.argmax(want)
        agree += int(same)
        # A flip between near-tied classes is rounding; one where Keras was sure is a broken export.
        top2 = np.sort(want)[-2:]
        real_flips += int(not same and (not fp16 or top2[1] - top2[0] > 2 * tolerance))
    worst = max(diffs)
    data = {"max_abs_diff": worst, "tolerance": tolerance, "argmax_agreement": agree / len(sequences),
            "n": len(sequences)}
    detail = (f"max |tflite - keras| = {worst:.1e} (tolerance {tolerance:.0e}), argmax agrees on "
              f"{agree}/{len(sequences)} sequences")
    if real_flips:
        detail += (f" ({real_flips} disagree where Keras led by more than {2 * tolerance:.0e})" if fp16
                   else f" ({real_flips} disagree)")
    return Gate("parity", worst <= tolerance and real_flips == 0, detail, data)


REAL_MEDIAN_FRAMES = 18  # the median length of 747 real competition files (a public sample of the training data)


def edge_cases() -> dict[str, np.ndarray]:
    """Inputs a submission meets on Kaggle that break careless graphs, and the real files' commonest shape."""
    rng = np.random.default_rng(1)
    one_nan_frame = plausible_frames(rng, 7)
    one_nan_frame[3] = np.nan
    # Real files have frames whose 468 face points are all NaN (0.5% of frames, 3.6% of files in a real sample):
    # a run of them inside a sequence, and the extreme of a sequence without a face at all.
    faceless = plausible_frames(rng, 12)
    faceless[4:9, list(FACE)] = np.nan
    no_face = plausible_frames(rng, 6)
    no_face[:, list(FACE)] = np.nan
    return {
        f"{REAL_MEDIAN_FRAMES} frames (a real file's median length)": plausible_frames(rng, REAL_MEDIAN_FRAMES),
        "1 frame": plausible_frames(rng, 1),
        "1000 frames": plausible_frames(rng, 1000),
        "a frame with every landmark NaN": one_nan_frame,
        "no hand in any frame": plausible_frames(rng, 20, hands=False),
        "frames without a face": faceless,
        "no face in any frame": no_face,
    }


def finite_gate(predict: Callable, n_classes: int = N_CLASSES) -> Gate:
    """`n_classes` finite values, whatever shape the model declares, on every edge case."""
    bad = []
    for name, frames in edge_cases().items():
        try:
            out = np.asarray(predict(frames))
        except KitError as err:  # the contract runner's count check: the wrong number of values
            bad.append(f"{name} ({str(err).split(': ', 1)[-1]})")
            continue
        if out.size != n_classes or not np.all(np.isfinite(out)):
            bad.append(f"{name} ({out.size} values, {int(np.sum(~np.isfinite(out)))} non-finite)")
    if bad:
        return Gate("finite", False, "non-finite or misshapen output on " + ", ".join(bad))
    return Gate("finite", True, f"{n_classes} finite values on " + ", ".join(edge_cases()))


def vocabulary_gate(signs) -> Gate:
    """The competition's 250 signs in its order, or an own vocabulary: reported, never blocking an export (such a
    model is for `kit predict`, not a competition submission; `kit submit` refuses it)."""
    from kit.data import vocabulary

    ok = vocabulary.is_competition(signs)
    detail = ("the competition's 250 signs, in its sign map's order" if ok else
              f"{vocabulary.describe(signs)}, not a competition submission")
    return Gate("vocabulary", ok, detail, {"n_signs": len(signs)}, blocking=False)


def check_model(model: bytes, reference: Callable | None = None, fp16: bool = False,
                size_limit_mb: float = SIZE_LIMIT_MB, max_lens: list[int] = (), budget_ms: float | None = None,
                members: int = 1, n_classes: int = N_CLASSES) -> list[Gate]:
    """Run every gate on `model`; `reference` (frames -> probabilities) enables the parity gate, on the latency
    probes and on `parity_lengths(max_lens)` (the preprocessing's max_len of each member); `budget_ms` holds the
    latency of the `members` models to that budget (see latency_gate). `n_classes`: the outputs it must give (250,
    the competition's; a model of your own vocabulary has one per sign)."""
    gates = [ops_gate(model), size_gate(model, size_limit_mb)]  # these read the flatbuffer only
    try:
        interp = tflite.interpreter(model)
    except KitError as err:  # e.g. a Flex op this runtime cannot resolve: already named by the ops gate
        return gates + [Gate("loads", False, str(err))]
    gates.insert(0, signature_gate(interp, n_classes))
    if not gates[0].ok:
        return gates  # the remaining gates need a working serving_default
    predict = tflite.contract_runner(interp, n_classes=n_classes)
    probes = probe_sequences()
    gates.append(finite_gate(predict, n_classes))
    if not gates[-1].ok:
        return gates  # latency and parity would fail on the same outputs, less clearly
    gates.append(latency_gate(model, probes, budget_ms=budget_ms, members=members, n_classes=n_classes))
    if reference is not None:
        rng = np.random.default_rng(2)
        edges = [plausible_frames(rng, n) for n in parity_lengths(list(max_lens))]
        gates.append(parity_gate(predict, reference, edges + probes, fp16))
    return gates


def failures(gates: list[Gate]) -> list[Gate]:
    """The gates that refuse the model (a non-blocking gate's failure is a note)."""
    return [g for g in gates if not g.ok and g.blocking]
