"""The one channel through which crane's core reports to a person.

The core never prints: it calls a `Console`. The CLI supplies a Rich console
(progress bars, tables); library users get `NullConsole` unless they pass one.
"""

from __future__ import annotations

from typing import Protocol


class Console(Protocol):
    """What the core may tell a user while it works."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def start_task(self, name: str, total: int | None = None) -> None:
        """A unit of work (e.g. one pipeline's extract) begins."""

    def advance(self, name: str, rows: int) -> None:
        """``rows`` more rows of ``name`` are done (drives rows, rows/s, elapsed)."""

    def finish_task(self, name: str) -> None: ...


class NullConsole:
    """A console that says nothing; the default for library use and tests."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def start_task(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, name: str, rows: int) -> None:
        pass

    def finish_task(self, name: str) -> None:
        pass
