"""`kit show`: a landmark sequence drawn frame by frame into a GIF (or MP4), raw or as the model sees it.

Each panel draws the face mesh (lips darker), both hands with their bones, the pose with its connections, the
frame number and which hands are in view. MediaPipe's y grows downward, so the y axis is inverted: the head
is at the top. Axis limits are fixed over the whole sequence so the picture does not jump. Coordinates are
normalised by the image's width and height separately; both axes are drawn at the same scale, so a clip shot
in landscape looks narrower than it was.

`--model-view` draws the output of `kit.preprocessing.preprocess.preprocess` (the very function training and the TFLite
graph run): the kept points after centring on the head and scaling, one panel step per model time step, with
padding dropped. A hand the model sees as zeros (missing) is not drawn; the frame label says so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.data import landmarks as L
from kit.errors import KitError
from kit.progress import say, track

DPI = 80  # 4-inch panels: 320 px, enough to see finger bones in a GIF of a few MB
PANEL_INCHES = 4.0
MARGIN = 0.08  # of the data's extent, around the fixed axis limits
COLORS = {"face": "#b5b5b5", "lips": "#8c564b", "pose": "#2ca02c", "left": "#1f77b4", "right": "#d62728"}
POSE_POINTS = tuple(L.OFFSET["pose"] + i for i in range(25))  # everything down to the hips
# Points whose extent sets the axis limits: the hips (and legs) are often below the picture and would shrink it.
LIMIT_POINTS = L.FACE + L.LEFT_HAND + L.RIGHT_HAND + tuple(L.OFFSET["pose"] + i for i in L.UPPER_POSE)
_LIPS = tuple(L.OFFSET["face"] + i for i in L.LIPS_FACE)
_HANDS = (("left", L.LEFT_HAND), ("right", L.RIGHT_HAND))


@dataclass(frozen=True)
class View:
    """One panel's sequence: `points[t]` is a `[543, 2]` x, y frame (NaN where nothing is drawn)."""

    title: str
    points: np.ndarray
    labels: tuple[str, ...]  # one line per frame: its number and the hands in view
    limits: tuple[float, float, float, float]  # x0, x1, y0, y1 (y0 < y1; drawn inverted)

    def __len__(self) -> int:
        return len(self.points)


def hands_in_view(frame: np.ndarray) -> str:
    """'left', 'right', 'left+right' or 'none': the hands with at least one finite point in a [543, >=2] frame."""
    seen = [name for name, idx in _HANDS if np.isfinite(frame[list(idx), :2]).any()]
    return "+".join(seen) or "none"


def fixed_limits(points: np.ndarray, indices: Sequence[int] | None = None) -> tuple[float, float, float, float]:
    """A square window around every finite point of the whole sequence (of `indices` if given), plus a margin."""
    sel = points[:, list(indices)] if indices is not None else points
    finite = sel[np.isfinite(sel).all(axis=-1)]
    if not len(finite):
        return 0.0, 1.0, 0.0, 1.0
    low, high = finite.min(axis=0), finite.max(axis=0)
    center, half = (low + high) / 2, max(float((high - low).max()) / 2, 1e-3) * (1 + MARGIN)
    return float(center[0] - half), float(center[0] + half), float(center[1] - half), float(center[1] + half)


def raw_view(frames: np.ndarray, title: str) -> View:
    """The sequence as MediaPipe gave it (`[T, 543, 3]`, x and y drawn)."""
    points = np.asarray(frames, np.float32)[:, :, :2]
    n = len(points)
    labels = tuple(f"frame {t + 1}/{n}  hands: {hands_in_view(p)}" for t, p in enumerate(points))
    return View(title, points, labels, fixed_limits(points, LIMIT_POINTS))


def model_points(frames: np.ndarray, cfg) -> np.ndarray:
    """What the model sees, `[steps, 543, 2]`: each kept point's normalised x, y at its landmark index.

    Runs `kit.preprocessing.preprocess.preprocess` itself; padded steps (mask 0) are dropped, landmarks the model does
    not keep are NaN, and so is a hand that the model sees as all zeros (a missing hand after NaN -> 0).
    """
    from kit.preprocessing import features as F
    from kit.preprocessing.preprocess import preprocess

    features, mask = preprocess(np.asarray(frames, np.float32), cfg)
    features, mask = np.asarray(features), np.asarray(mask)
    channels = 3 if cfg.use_z else 2
    n_points = F.n_coordinates(cfg)  # coordinates come first in every feature recipe
    kept = list(F.selected_points(cfg)[:n_points])
    coords = features[mask > 0, : n_points * channels].reshape(-1, n_points, channels)[..., :2]
    out = np.full((len(coords), L.N_LANDMARKS, 2), np.nan, np.float32)
    out[:, kept] = coords
    for _, hand in _HANDS:
        zeros = np.all(out[:, list(hand)] == 0, axis=(1, 2))
        out[np.ix_(zeros, list(hand))] = np.nan
    return out


def preprocessed_view(frames: np.ndarray, title: str, cfg) -> View:
    """The sequence after the preprocessing layer (`cfg`: a PreprocessConfig)."""
    points = model_points(frames, cfg)
    n = len(points)
    labels = tuple(f"model step {t + 1}/{n} (of {len(frames)} frames)  hands: {hands_in_view(p)}"
                   for t, p in enumerate(points))
    return View(f"{title} - model view", points, labels, fixed_limits(points))


class Renderer:
    """A matplotlib figure of side-by-side panels whose artists are updated per frame (Agg, no window)."""

    def __init__(self, views: Sequence[View], dpi: int = DPI, columns: int | None = None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.views = list(views)
        self.columns = columns or len(self.views)  # panels in a row; more wrap into rows below
        self.rows = -(-len(self.views) // self.columns)
        height = self.rows * (PANEL_INCHES + 0.35)
        self.fig = Figure(figsize=(PANEL_INCHES * self.columns, height), dpi=dpi)
        FigureCanvasAgg(self.fig)
        # 0.61 inch above each row for its title and frame label, 0.09 below the last (one row: 0.86 and 0.02)
        self.fig.subplots_adjust(left=0.02, right=0.98, bottom=0.087 / height, top=1 - 0.609 / height, wspace=0.05,
                                 hspace=0.16)
        self.panels = [self._panel(i, view) for i, view in enumerate(self.views)]

    def __len__(self) -> int:
        return max(len(view) for view in self.views)  # a shorter sequence holds its last frame

    def _panel(self, i: int, view: View) -> dict:
        from matplotlib.collections import LineCollection

        ax = self.fig.add_subplot(self.rows, self.columns, i + 1)
        x0, x1, y0, y1 = view.limits
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)  # inverted: y grows downward in image coordinates, so the head is at the top
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(view.title, fontsize=8, pad=12)
        empty = np.empty((0, 2))
        panel = {"ax": ax,
                 "face": ax.scatter(empty[:, 0], empty[:, 1], s=1, c=COLORS["face"], linewidths=0),
                 "lips": ax.scatter(empty[:, 0], empty[:, 1], s=3, c=COLORS["lips"], linewidths=0),
                 # between the title and the axes, where no landmark can hide it
                 "label": ax.text(0.5, 1.01, "", transform=ax.transAxes, va="bottom", ha="center", fontsize=7)}
        for name in ("pose", "left", "right"):
            panel[f"{name}_bones"] = ax.add_collection(LineCollection([], colors=COLORS[name], linewidths=1.2))
            panel[name] = ax.scatter(empty[:, 0], empty[:, 1], s=6, c=COLORS[name], linewidths=0, zorder=3)
        return panel

    def draw(self, t: int) -> None:
        """Move every artist to frame `t`."""
        for view, panel in zip(self.views, self.panels):
            points = view.points[min(t, len(view) - 1)]
            panel["face"].set_offsets(_finite(points[list(L.FACE)]))
            panel["lips"].set_offsets(_finite(points[list(_LIPS)]))
            pose = points[list(POSE_POINTS)]
            panel["pose"].set_offsets(_finite(pose))
            panel["pose_bones"].set_segments(_bones(pose, L.POSE_BONES))
            for name, idx in _HANDS:
                hand = points[list(idx)]
                panel[name].set_offsets(_finite(hand))
                panel[f"{name}_bones"].set_segments(_bones(hand, L.HAND_BONES))
            panel["label"].set_text(view.labels[min(t, len(view) - 1)] + ("  (ended)" if t >= len(view) else ""))

    def image(self, t: int):
        """Frame `t` as an RGB PIL image."""
        from PIL import Image

        self.draw(t)
        self.fig.canvas.draw()
        return Image.fromarray(np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy())

    def pixel(self, panel: int, x: float, y: float) -> tuple[int, int]:
        """The (column, row) of the image where the point (x, y) of `panel` is drawn (row 0 at the top)."""
        self.fig.canvas.draw()  # the equal aspect settles the axes box at draw time
        col, up = self.panels[panel]["ax"].transData.transform((x, y))
        height = self.fig.canvas.get_width_height()[1]
        return int(round(col)), int(round(height - up))

    def close(self) -> None:
        self.fig.clear()


def _finite(points: np.ndarray) -> np.ndarray:
    return points[np.isfinite(points).all(axis=1)]


def _bones(points: np.ndarray, bones) -> list[np.ndarray]:
    n = len(points)
    return [points[[a, b]] for a, b in bones if a < n and b < n and np.isfinite(points[[a, b]]).all()]


@dataclass(frozen=True)
class ShowResult:
    out: Path
    frames: int
    titles: tuple[str, ...]

    def __str__(self) -> str:
        return f"wrote {self.out}: {self.frames} frames of {' | '.join(self.titles)}"


def load_parquet(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """A landmark file's frames and a title (participant/sequence, and the sign when train.csv is beside it)."""
    from kit.data.parquet import read_landmarks

    path = Path(path)
    if not path.is_file():  # a path the user typed: "download it again" (a damaged data file's fix) would mislead
        raise KitError(f"{path}: no such file; give a landmark .parquet (e.g. one under "
                       "data/asl-signs/train_landmark_files/)")
    frames = read_landmarks(path)
    title = f"{path.parent.name}/{path.stem}"
    sign = _sign_from_train_csv(path)
    return frames, f"{title} ({sign})" if sign else title


def _sign_from_train_csv(path: Path) -> str | None:
    """The sign of a file inside a competition folder (DATA/train_landmark_files/P/S.parquet), else None."""
    if path.parent.parent.name != "train_landmark_files":
        return None
    train_csv = path.parent.parent.parent / "train.csv"
    if not train_csv.is_file():
        return None
    from kit.data.prepare import read_train_csv

    try:
        rows = read_train_csv(train_csv)
    except KitError as err:
        say(f"note: no sign in the title: {err}")
        return None
    return next((r.sign for r in rows if str(r.sequence_id) == path.stem), None)


def load_cached(cache_dir: str | os.PathLike, sequence_id: int) -> tuple[np.ndarray, str]:
    """A cached sequence's frames and a title (participant/sequence and sign)."""
    from kit.data.cache import open_cache

    cache = open_cache(cache_dir)
    where = np.flatnonzero(cache.sequence_ids == int(sequence_id))
    if not len(where):
        raise KitError(f"{cache_dir}: no sequence {sequence_id} in this cache ({len(cache)} sequences, e.g. "
                       f"{', '.join(str(s) for s in cache.sequence_ids[:3])})")
    i = int(where[0])
    return cache.frames(i), (f"{cache.participant_ids[i]}/{sequence_id} ({cache.signs[int(cache.labels[i])]})")


def show(paths: Sequence[str | os.PathLike] = (), out: str | os.PathLike | None = None, fps: float = 15,
         model_view: bool = False, run_dir: str | os.PathLike | None = None,
         cache_dir: str | os.PathLike | None = None, sequence_ids: Sequence[int] = (), dpi: int = DPI) -> ShowResult:
    """Render one or two sequences (parquet files, or cached sequences by id) side by side into `out`.

    `out` defaults to `<stem>.gif` in the current folder; `.mp4` needs ffmpeg (system, or `kit[video]`).
    `model_view` draws them after preprocessing with the config of `run_dir` (its config.json), else the default.
    """
    if sequence_ids and cache_dir is None:
        raise KitError("--sequence-id needs --cache DIR: the cache written by kit prepare that holds it")
    if cache_dir is not None and not sequence_ids:
        raise KitError(f"--cache {cache_dir} needs --sequence-id ID: which cached sequence to show")
    if not 1 <= len(paths) + len(sequence_ids) <= 2:
        raise KitError(f"got {len(paths) + len(sequence_ids)} sequences: kit show draws one, or two side by side "
                       "(kit show A.parquet B.parquet, or --cache DIR --sequence-id ID)")
    if fps <= 0:
        raise KitError(f"--fps {fps}: must be positive")
    if run_dir is not None and not model_view:
        raise KitError("--run only chooses the preprocessing of --model-view: add --model-view")
    out = Path(out) if out is not None else Path.cwd() / f"{_stem(paths, sequence_ids)}.gif"
    check_out(out)
    sources = [load_parquet(p) for p in paths] + [load_cached(cache_dir, s) for s in sequence_ids]
    if model_view:
        cfg = _preprocess_config(run_dir)
        views = [preprocessed_view(frames, title, cfg) for frames, title in sources]
    else:
        views = [raw_view(frames, title) for frames, title in sources]
    renderer = Renderer(views, dpi=dpi)
    try:
        write(renderer, out, fps)
    finally:
        renderer.close()
    return ShowResult(out, len(renderer), tuple(v.title for v in views))


def _preprocess_config(run_dir):
    from kit import config as config_mod

    if run_dir is None:
        return config_mod.Config().preprocess
    return config_mod.load(Path(run_dir) / "config.json").preprocess


def _stem(paths, sequence_ids) -> str:
    return "_".join([Path(p).stem for p in paths] + [str(s) for s in sequence_ids])


def check_out(out: Path, command: str = "kit show") -> None:
    """Fail before any drawing on an output that cannot be written."""
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise KitError(f"{out}: {command} writes .gif or .mp4; give --out NAME.gif")
    if suffix == ".mp4" and not find_ffmpeg():
        raise KitError(f"{out}: writing .mp4 needs ffmpeg, found neither on PATH nor from imageio-ffmpeg: "
                       f"pip install 'kit[video]', or write a GIF with --out {out.with_suffix('.gif').name}")


def find_ffmpeg() -> bool:
    """Whether matplotlib can write MP4: a system ffmpeg, else the binary the `imageio-ffmpeg` wheel ships."""
    import matplotlib
    from matplotlib import animation

    if animation.writers.is_available("ffmpeg"):
        return True
    try:
        import imageio_ffmpeg
    except ImportError:
        return False
    matplotlib.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    return animation.writers.is_available("ffmpeg")


def write(renderer: Renderer, out: Path, fps: float) -> None:
    """Every frame of `renderer` into `out` (.gif, or .mp4 through ffmpeg), with a progress bar."""
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = track(range(len(renderer)), f"drawing {out.name}")
    if out.suffix.lower() == ".gif":
        _write_gif(renderer, frames, out, fps)
    else:
        _write_mp4(renderer, frames, out, fps)


def _write_gif(renderer: Renderer, frames, out: Path, fps: float) -> None:
    from PIL import Image

    # Quantised as they come: a palette image is a third of the RGB one, and long sequences have 500 frames.
    images = [renderer.image(t).convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for t in frames]
    save_gif(images, out, fps)


def save_gif(images: list, out: Path, fps: float) -> None:
    """PIL images as a looping GIF at `fps` (GIF frame times are hundredths of a second; 20 ms at the fastest)."""
    images[0].save(out, save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0)


def _write_mp4(renderer: Renderer, frames, out: Path, fps: float) -> None:
    from matplotlib import animation

    writer = animation.FFMpegWriter(fps=fps)
    with writer.saving(renderer.fig, str(out), renderer.fig.dpi):
        for t in frames:
            renderer.draw(t)
            writer.grab_frame()
