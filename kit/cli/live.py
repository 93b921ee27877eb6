"""`kit live`: sign into your webcam, or play a video, in a local web page and watch a model answer (kit.live).

Each command parses its options, calls one library function and reports (kit/cli/__init__.py registers them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def live(
    model: Path = typer.Argument(..., help="A model.tflite, a submission.zip or a run folder (its export): the "
                                 "competition's 250 signs or your own vocabulary."),
    video: Optional[Path] = typer.Option(None, "--video", help="Play this recording through the page instead of "
                                         "the camera (for machines without one)."),
    port: Optional[int] = typer.Option(None, "--port", help="The port on 127.0.0.1 (default: a free one)."),
    gap: float = typer.Option(1.0, "--gap", help="Seconds without a hand that end a sign (the page can change it)."),
    key: bool = typer.Option(False, "--key", help="Start in key mode: a sign is what you sign while holding the "
                             "space bar (the page can change it)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Record takes from the page into this competition "
                                        "folder, as kit capture --data does."),
    vocabulary: Optional[str] = typer.Option(None, "--vocabulary", help="With --data: 'own' (your signs: the "
                                             "folder's map grows with each new sign) or 'competition' (the 250)."),
) -> None:
    """Sign into your webcam and watch MODEL answer, in a page on 127.0.0.1 (kit\\[live] and kit\\[capture] extras).

    The page draws MediaPipe's landmarks over the camera, cuts each sign out of the stream (a sign starts when a
    hand appears and ends after --gap seconds without one, or is what you sign while holding the space bar) and
    shows the model's top 5, its time and a transcript. With --data it records named takes of a signer into a
    competition folder, for kit prepare and kit train. Open the address it prints; Ctrl-C stops it.

    Example: kit live runs/a
    Example: kit live runs/own/export/model.tflite --data data/own --vocabulary own
    Example: kit live submission.zip --video my_signs.mp4 --port 8765
    """
    from kit.live.server import live as serve

    def ready(url: str) -> None:
        typer.echo(f"kit live: open {url} in your browser (only this machine can reach it); Ctrl-C stops")

    serve(model, video=video, port=port, gap=gap, mode="key" if key else "hands", data=data, vocabulary=vocabulary,
          ready=ready)
