"""Progress bars and status lines for long work, on stderr so that stdout stays for results; and `plural`, so that
every count the kit prints has its noun in the right number."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
console = Console(stderr=True, highlight=False)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield from `items` while showing a bar with count, elapsed and remaining time."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
        progress.update(task, total=progress.tasks[0].completed)  # an estimated total (a video's) ends full


def say(message: str) -> None:
    """One status line on stderr."""
    console.print(message, soft_wrap=True)  # never re-wrap a line in logs


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 fold", "3 folds": a count with its noun in the right number (`many` for an irregular plural)."""
    return f"{n} {word if n == 1 else many or word + 's'}"
