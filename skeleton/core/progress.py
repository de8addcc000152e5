"""Progress bars for long stages. The CLI passes a live reporter; library calls default to silence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Bar:
    """One bar: ``advance(n, **fields)`` moves it and shows fields such as loss and accuracy."""

    def __init__(self, progress: Progress | None, task_id=None):
        self._progress = progress
        self._task_id = task_id

    def advance(self, steps: int = 1, **fields: float | str) -> None:
        if self._progress is None:
            return
        info = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        if fields:
            self._progress.update(self._task_id, advance=steps, info=info)
        else:
            self._progress.update(self._task_id, advance=steps)


class Reporter:
    """Hands out progress bars and one-line status messages, or stays silent."""

    def __init__(self, enabled: bool = False, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[Bar]:
        if not self.enabled:
            yield Bar(None)
            return
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total, info="")
            yield Bar(progress, task_id)


SILENT = Reporter(enabled=False)
