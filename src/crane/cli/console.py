"""The Rich implementation of `crane.console.Console` used by the CLI.

Imported only inside CLI commands (rich is not needed for ``crane --help``).
Messages go to stderr so that ``--json`` output on stdout stays machine-readable.
The progress bar (rows, rows/s, elapsed) is drawn only when stderr is a
terminal: in CI logs and pipes a redrawn bar is noise, and ``rich.progress``
is not even imported then (it is a good part of Rich's import time).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from crane.cli.output import may_be_terminal
from crane.config.secrets import mask

if TYPE_CHECKING:
    from rich.console import Console as RichTerminal
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text


class RichConsole:
    """Progress bars and messages on a Rich console (stderr by default)."""

    def __init__(self, terminal: RichTerminal | None = None, *, quiet: bool = False) -> None:
        self._terminal = terminal
        self.quiet = quiet
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    @property
    def terminal(self) -> RichTerminal:
        """The Rich console, made on first use: a quiet run with nothing to say never needs Rich."""
        if self._terminal is None:
            from rich.console import Console as Terminal

            self._terminal = Terminal(stderr=True)
        return self._terminal

    @property
    def shows_progress(self) -> bool:
        if self.quiet:
            return False
        if self._terminal is None and not may_be_terminal(sys.stderr):
            return False  # a pipe or a file: knowing that needs no Rich (~25 ms to import)
        return self.terminal.is_terminal

    def info(self, message: str) -> None:
        if not self.quiet:
            self.terminal.print(mask(message), markup=False, highlight=False)

    def warn(self, message: str) -> None:
        self.terminal.print(f"warning: {mask(message)}", style="yellow", markup=False)

    def start_task(self, name: str, total: int | None = None) -> None:
        if not self.shows_progress:
            return
        with self._lock:
            if self._progress is None:
                self._progress = _new_progress(self.terminal)
                self._progress.start()
            self._tasks[name] = self._progress.add_task(mask(name), total=total)

    def advance(self, name: str, rows: int) -> None:
        with self._lock:
            if self._progress is not None and name in self._tasks:
                self._progress.advance(self._tasks[name], rows)

    def finish_task(self, name: str) -> None:
        with self._lock:
            if self._progress is None or name not in self._tasks:
                return
            task_id = self._tasks.pop(name)
            task = self._progress.tasks[task_id]
            if task.total is None:
                self._progress.update(task_id, total=max(task.completed, 1))
            self._progress.refresh()
            if not self._tasks:
                self._progress.stop()
                self._progress = None

    def close(self) -> None:
        """Stop a bar left running by a task that failed before finishing."""
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            self._tasks.clear()


def _new_progress(terminal: RichTerminal) -> Progress:
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Average rows per second since the task started (steadier than a sliding window)."""

        def render(self, task: Task) -> Text:
            elapsed = task.elapsed or 0.0
            rate = task.completed / elapsed if elapsed > 0 else 0.0
            return Text(f"{rate:>12,.0f} rows/s")

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>12,.0f} rows"),
        RateColumn(),
        TimeElapsedColumn(),
        console=terminal,
        transient=False,
    )
