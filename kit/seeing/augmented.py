"""`kit show FILE --augment N`: what training makes of a sequence, drawn N times beside the original, and what
each augmentation drew.

The draws run the training pipeline's own code on the pipeline's own layout: the landmarks it holds in RAM
(kit.preprocessing.augment.resident_landmarks), the frames `keep_frames` keeps, then `augment.chain` with the
config's settings, whose parameters (fired or not, rate, angle, box, ...) come back with the frames. Draw k is
what the pipeline draws for a sequence at cache row 0 in pass k (draw number row x 1000 + pass), so a change of
`train.seed` changes them as it changes training. Landmarks outside that layout are never augmented, so no panel
draws them (the face is its lips, eyes and nose): the original is drawn the same way.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.data import landmarks as L
from kit.errors import KitError
from kit.seeing import show as S

MAX_PANELS = 12  # the original and up to 11 draws: 4 x 3 panels of 320 px; the table counts every draw
NAMES = {"resample": "resample", "mirror": "mirror", "crop": "random crop", "affine": "affine",
         "affine80": "rotate/zoom/noise", "temporal_mask": "temporal mask", "spatial_mask": "spatial mask"}


def draw(frames: np.ndarray, cfg, n: int) -> tuple[np.ndarray, list[np.ndarray], dict]:
    """The original as training reads it and `n` augmented draws of a raw `[T, 543, 3]` sequence, each `[T', 543,
    3]` with NaN outside the resident landmarks, and the parameters: `{augmentation: {name: array [n]}}`."""
    import tensorflow as tf

    from kit.preprocessing import augment
    from kit.preprocessing.preprocess import keep_frames

    layout = augment.resident_landmarks()
    resident = tf.constant(np.asarray(frames, np.float32)[:, layout])

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64)], autograph=False)  # no Python control flow: 9 s less
    def one(number):
        # as kit.training.pipeline.make_dataset's `example`: frames kept, then the chain
        return augment.chain(keep_frames(resident, cfg.preprocess, layout), cfg, number, layout)

    kept = keep_frames(resident, cfg.preprocess, layout).numpy()
    draws, params = [], []
    for k in range(n):
        out, drawn = one(tf.constant(k, tf.int64))  # row 0 x 1000 + pass k
        draws.append(_full(out.numpy(), layout))
        params.append(drawn)
    stacked = {name: {key: np.asarray([p[name][key].numpy() for p in params]) for key in params[0][name]}
               for name in (params[0] if params else {})}
    return _full(kept, layout), draws, stacked


def _full(frames: np.ndarray, layout: np.ndarray) -> np.ndarray:
    out = np.full((len(frames), L.N_LANDMARKS, 3), np.nan, np.float32)
    out[:, layout] = frames
    return out


@dataclass(frozen=True)
class Row:
    """One augmentation's line of the table: its name, its setting, how often it fired, what it drew."""

    name: str
    setting: str
    fired: str
    drawn: str


def _span(values: np.ndarray, fmt: str = "{:.2f}", unit: str = "") -> str:
    if not len(values):
        return "-"
    low, high = fmt.format(values.min()) + unit, fmt.format(values.max()) + unit
    return low if low == high else f"{low} to {high}"


def summary(params: dict, cfg, n: int, length: int) -> list[Row]:
    """The table: per augmentation (in the pipeline's order), its setting, fired k/n, and the range of what it
    drew over the draws where it fired; "off" where the config does not run it. `length`: frames of the original
    as training reads it."""
    from kit.preprocessing.augment import ORDER

    rows = []
    for name in ORDER:
        if name == "affine80":
            t = cfg.train
            on = bool(t.rotate_deg or t.scale_range or t.noise_std)
            rows.append(Row(NAMES[name], f"rotate +-{t.rotate_deg:g} deg, zoom 1+-{t.scale_range:g}, noise "
                            f"{t.noise_std:g}", f"{n}/{n}", "always (its draws are not reported)") if on else
                        Row(NAMES[name], "off", "-", ""))
        elif name not in params:
            rows.append(Row(NAMES[name], "off", "-", ""))
        else:
            fired = params[name]["fired"].astype(bool)
            drawn = {key: values[fired] for key, values in params[name].items()}
            setting, what = _DESCRIBE[name](cfg, drawn, length)
            rows.append(Row(NAMES[name], setting, f"{int(fired.sum())}/{n}", what))
    return rows


def _resample(cfg, p, length):
    from kit.preprocessing.augment import RESAMPLE_METHODS

    t = cfg.train
    methods = ", ".join(f"{m} {int((p['method'] == i).sum())}" for i, m in enumerate(RESAMPLE_METHODS))
    return (f"p {t.resample_prob:g}, rate {t.resample_min:g}-{t.resample_max:g}",
            f"rate {_span(p['rate'])}; {methods}; {_span(p['length'], '{:.0f}')} frames of {length}")


def _crop(cfg, p, length):
    max_len = cfg.preprocess.max_len
    return (f"{max_len} frames", f"offset {_span(p['offset'], '{:.0f}')}" if len(p["offset"]) else
            f"nothing to crop: {length} frames or fewer than {max_len} after resampling")


def _affine(cfg, p, length):
    t, axis = cfg.train, p["shear_axis"]
    return (f"p {t.affine_prob:g}, scale 1+-{t.affine_scale:g}, shear +-{t.affine_shear:g}, turn "
            f"+-{t.affine_degrees:g} deg, shift +-{t.affine_shift:g}",
            f"scale {_span(p['scale'])}; shear on x {int((axis == 0).sum())} ({_span(p['shear'][axis == 0])}), "
            f"on y {int((axis == 1).sum())} ({_span(p['shear'][axis == 1])}); turn "
            f"{_span(p['degrees'], '{:.0f}', ' deg')}; shift {_span(p['shift'])}")


def _temporal_mask(cfg, p, length):
    t = cfg.train
    return (f"p {t.temporal_mask_prob:g}, {t.temporal_mask_min:g}-{t.temporal_mask_max:g} of the frames",
            f"{_span(100 * p['fraction'], '{:.0f}', '%')} of the frames")


def _spatial_mask(cfg, p, length):
    t = cfg.train
    return (f"p {t.spatial_mask_prob:g}, side {t.spatial_mask_min:g}-{t.spatial_mask_max:g}",
            f"side {_span(p['size'])}; {_span(100 * p['fraction'], '{:.0f}', '%')} of the points seen")


_DESCRIBE = {"resample": _resample, "mirror": lambda cfg, p, length: (f"p {cfg.train.mirror_prob:g}", ""),
             "crop": _crop, "affine": _affine, "temporal_mask": _temporal_mask, "spatial_mask": _spatial_mask}


def table(rows: list[Row]) -> str:
    """The rows as aligned text: augmentation, setting, fired, drawn."""
    head = Row("augmentation", "setting", "fired", "drawn (where it fired)")
    widths = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("name", "setting", "fired")]
    return "\n".join(f"{r.name:<{widths[0]}}  {r.setting:<{widths[1]}}  {r.fired:>{widths[2]}}  {r.drawn}".rstrip()
                     for r in [head, *rows])


def describe(params: dict, k: int) -> str:
    """A panel's title: the draw's number and the augmentations that fired in it."""
    from kit.preprocessing.augment import ORDER, RESAMPLE_METHODS

    short = {"resample": "", "mirror": "mirror", "crop": "crop", "affine": "affine", "temporal_mask": "time mask",
             "spatial_mask": "box mask"}
    fired = []
    for name in ORDER:
        p = params.get(name)
        if p is None or not p["fired"][k]:
            continue
        fired.append(f"x{p['rate'][k]:.2f} {RESAMPLE_METHODS[p['method'][k]]}" if name == "resample" else short[name])
    return f"draw {k + 1}: {', '.join(fired) or 'as it was'}"


@dataclass(frozen=True)
class AugmentResult:
    out: Path
    n: int
    drawn: int  # draws in the picture (at most MAX_PANELS - 1)
    rows: tuple[Row, ...]

    def __str__(self) -> str:
        shown = f"the original and {self.drawn} draws" if self.drawn == self.n else \
            f"the original and the first {self.drawn} of {self.n} draws"
        return f"{table(list(self.rows))}\nwrote {self.out}: {shown}"


def show_augment(path: str | os.PathLike, n: int, cfg, out: str | os.PathLike | None = None, fps: float = 15,
                 dpi: int = S.DPI) -> AugmentResult:
    """Draw `n` augmented versions of a landmark file with `cfg`'s training augmentations beside the original
    (a grid GIF or MP4), and count what they drew."""
    if n < 1:
        raise KitError(f"--augment {n}: give the number of draws, 1 or more (e.g. --augment 8)")
    if fps <= 0:
        raise KitError(f"--fps {fps}: must be positive")
    out = Path(out) if out is not None else Path.cwd() / f"{Path(path).stem}_augment.gif"
    S.check_out(out)
    frames, title = S.load_parquet(path)
    original, draws, params = draw(frames, cfg, n)
    shown = draws[:MAX_PANELS - 1]
    views = [S.raw_view(original, f"{title}, as training reads it")]
    views += [S.raw_view(d, describe(params, k)) for k, d in enumerate(shown)]
    # One window for every panel, so that a scale, a shift or a turn shows as one
    everything = np.concatenate([v.points for v in views])
    limits = S.fixed_limits(everything, S.LIMIT_POINTS)
    views = [dataclasses.replace(v, limits=limits) for v in views]
    renderer = S.Renderer(views, dpi=dpi, columns=int(np.ceil(np.sqrt(len(views)))))
    try:
        S.write(renderer, out, fps)
    finally:
        renderer.close()
    return AugmentResult(out, n, len(shown), tuple(summary(params, cfg, n, len(original))))
