"""Rendering shared by the commands: errors, JSON, tables. Everything printed is masked."""

from __future__ import annotations

import json
import logging
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
    """A Rich table on stdout; plain columns when stdout is not a terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    numeric = set()
    materialized = [list(r) for r in rows]
    for i, name in enumerate(columns):
        if materialized and all(
            isinstance(r[i], int | float) for r in materialized if r[i] is not None
        ):
            numeric.add(i)
        table.add_column(name, justify="right" if i in numeric else "left", overflow="fold")
    for row in materialized:
        table.add_row(*(_cell(v) for v in row))
    # values print as they are: no ":x:" -> emoji (that also skips loading Rich's emoji table)
    Console(soft_wrap=False, width=_width(), emoji=False).print(table)


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
    from rich.markup import escape

    return escape(mask(str(value)))
