"""`kit capture`: your own signing into a competition landmark file (kit.capture).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer



def capture(
    source: Optional[Path] = typer.Argument(None, help="A video file, a folder of images (the frames of one "
                                            "recording, in name order) or an image."),
    out: Optional[Path] = typer.Option(None, "--out", help="The landmark file to write: FILE.parquet."),
    webcam: Optional[int] = typer.Option(None, "--webcam", help="Record camera N instead (0: the first); stop "
                                         "with Ctrl-C or --seconds."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="With --webcam: stop after this many seconds."),
    fps: float = typer.Option(30.0, "--fps", help="Resample a video or webcam to this rate: 30 is the "
                              "competition's; 0 keeps every source frame."),
    data: Optional[Path] = typer.Option(None, "--data", help="Instead of --out: add the recording to this "
                                        "competition-layout folder (with --participant and --sign)."),
    participant: Optional[int] = typer.Option(None, "--participant", help="With --data: the signer's id."),
    sign: Optional[str] = typer.Option(None, "--sign", help="With --data: the sign recorded, from the sign map."),
    vocabulary: Optional[str] = typer.Option(None, "--vocabulary", help="With --data: 'own' collects signs of your "
                                             "own (the folder's map grows with each new sign; models get one "
                                             "output per sign), 'competition' the 250 signs. Default: the folder's "
                                             "map decides; a new folder is competition."),
) -> None:
    """Track your own signing with MediaPipe Holistic into a competition landmark file (kit\\[capture] extra).

    Frames where MediaPipe finds no pose are dropped (the competition's files have one in every frame); frames with
    a pose but no face are kept with NaN face points, as in the competition's files.

    Example: kit capture my_sign.mp4 --out my_sign.parquet
    Example: kit capture --webcam 0 --seconds 3 --out me.parquet
    Example: kit capture cloud.mp4 --data data/mine --participant 90001 --sign cloud && kit prepare --data data/mine
    Example: kit capture wave.mp4 --data data/own --participant 1 --sign wave --vocabulary own
    """
    from kit.capture.holistic import capture as run_capture
    from kit.capture.holistic import open_any

    typer.echo(run_capture(open_any(source, webcam, seconds), out=out, fps=fps, data=data,
                           participant=participant, sign=sign, vocabulary=vocabulary))
