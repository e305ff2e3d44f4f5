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
    def __init__(self, unit: str) -> None:
        super().__init__("")
        self.unit = f" {unit}/s" if unit else "/s"

    def render(self, task):
        speed = task.finished_speed or task.speed
        return f"{speed:5.1f}{self.unit}" if speed else f"  ...{self.unit}"


@contextmanager
def progress_bar(enabled: bool = True, unit: str = "img") -> Iterator[Callable[..., None] | None]:
    """Yields a ``progress(done, total, step=...)`` callback for ``Collection.add`` or
    ``Collection.duplicates``, or None when quiet. A step that starts (another step, or the next batch of
    one) starts the bar again, its rate and time left with it: carried over, they would mislead."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        RateColumn(unit), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, step: str = "embedding") -> None:
            (shown,) = bar.tasks
            if step != shown.description or done < shown.completed or total != shown.total:
                bar.reset(task, total=total, completed=done, description=step)
            else:
                bar.update(task, completed=done, total=total, description=step)

        yield update
