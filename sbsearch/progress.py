"""Progress reporting as a tiny interface, so the library stays free of terminal code."""

from __future__ import annotations


class Progress:
    def start(self, description: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def stop(self) -> None: ...
    def message(self, text: str) -> None: ...


class NullProgress(Progress):
    pass


class RichProgress(Progress):
    """A rich progress bar on stderr; the CLI uses it when stderr is a terminal."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True, emoji=False)
        self._bar = None
        self._task = None

    def start(self, description: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.stop()
        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
        self._bar.start()
        from rich.markup import escape

        from .textsafe import visible

        self._task = self._bar.add_task(escape(visible(description)), total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def message(self, text: str) -> None:
        from rich.markup import escape

        from .textsafe import visible

        self.console.print(f"[dim]{escape(visible(text))}…[/dim]", highlight=False)
