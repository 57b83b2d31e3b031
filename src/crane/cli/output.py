"""Rendering shared by the commands: errors, JSON, tables. Everything printed is masked."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from crane.config.secrets import install_logging_filter, mask

EXIT_FAILURE = 1


def setup_logging(debug: bool) -> None:
    """Log to stderr (warnings, or everything with --debug) through the masking filter."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    install_logging_filter(root)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def report_error(error: BaseException, debug: bool) -> int:
    """Print ``error`` masked on stderr: one message, or the traceback with ``--debug``."""
    from crane.errors import CraneError

    if debug:
        text = "".join(traceback.format_exception(error))
        print(mask(text), file=sys.stderr, end="")
    elif isinstance(error, CraneError):
        print(f"error: {mask(str(error))}", file=sys.stderr)
    else:
        print(f"error: {type(error).__name__}: {mask(str(error))}", file=sys.stderr)
        print("  hint: run again with --debug to see the traceback", file=sys.stderr)
    return EXIT_FAILURE


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (the one thing --json prints there)."""
    print(mask(json.dumps(data, indent=2, default=str, sort_keys=False)))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A Rich table on a terminal; plain aligned columns on a pipe or a file.

    A pipe gets one line per row (``grep`` and ``sort`` work on it) and no Rich import,
    which would otherwise be a good part of a short command's start-up.

    >>> print_table("runs", ["pipeline", "loaded"], [["orders", 1200], ["items", None]])
    runs
    pipeline  loaded
    orders     1,200
    items
    """
    materialized = [list(r) for r in rows]
    numeric = _numeric_columns(len(columns), materialized)
    if may_be_terminal(sys.stdout):
        from rich.console import Console

        # values print as they are: no ":x:" -> emoji (that also skips loading Rich's emoji table)
        terminal = Console(soft_wrap=False, width=_width(), emoji=False)
        if terminal.is_terminal:
            terminal.print(_rich_table(title, columns, materialized, numeric))
            return
    _print_plain(title, columns, materialized, numeric)


def may_be_terminal(stream: Any) -> bool:
    """False when Rich would surely say ``stream`` is no terminal: it is no TTY and no
    variable that can force Rich's answer is set. Knowing that needs no Rich (~25 ms to
    import); True means "ask Rich"."""
    forced = ("TTY_COMPATIBLE", "FORCE_COLOR", "FORCE_TERMINAL", "TTY_INTERACTIVE")
    if any(name in os.environ for name in forced):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _numeric_columns(count: int, rows: list[list[Any]]) -> set[int]:
    """The columns whose every value is a number: they are right-aligned."""
    if not rows:
        return set()
    return {
        i
        for i in range(count)
        if all(isinstance(r[i], int | float) for r in rows if i < len(r) and r[i] is not None)
    }


def _rich_table(
    title: str | None, columns: Sequence[str], rows: list[list[Any]], numeric: set[int]
) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i in numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(escape(_cell(v)) for v in row))
    return table


def _print_plain(
    title: str | None, columns: Sequence[str], rows: list[list[Any]], numeric: set[int]
) -> None:
    """Columns two spaces apart, numbers right-aligned, one line per row.

    The table goes out in one write, as Rich's does: a reader that stops early
    (``crane runs | head -3``) has then usually taken it all before it closes the pipe.
    """
    count = max([len(columns), *(len(r) for r in rows)])
    if not count:
        return
    lines = [[*columns, *[""] * (count - len(columns))]]
    for row in rows:
        lines.append([" ".join(_cell(v).splitlines()) for v in row] + [""] * (count - len(row)))
    widths = [max(len(line[i]) for line in lines) for i in range(count)]
    text = [title] if title else []
    for line in lines:
        padded = (
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        text.append("  ".join(padded).rstrip())
    sys.stdout.write("\n".join(text) + "\n")
    sys.stdout.flush()


def _width() -> int | None:
    import shutil

    return None if sys.stdout.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return mask(str(value))
