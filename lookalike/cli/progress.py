"""A rich progress bar with images/s and ETA, silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)


class RateColumn(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):
        speed = task.finished_speed or task.speed
        return f"{speed:5.1f} img/s" if speed else "  ... img/s"


@contextmanager
def embedding_progress(enabled: bool = True) -> Iterator[Callable[..., None] | None]:
    """Yields a ``progress(done, total, step=...)`` callback for ``Collection.add``, or None when quiet."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        RateColumn(), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("embedding", total=None)

        def update(done: int, total: int, step: str = "embedding") -> None:
            bar.update(task, completed=done, total=total, description=step)

        yield update
