"""Per-attempt logs for tasks on threads: ``print`` in a task goes to that attempt's file.

``sys.stdout``/``sys.stderr`` are process-wide, so while a DAG runs they are
replaced by routers that send each thread's writes to the log file of the task
that thread runs (opened on first write, so silent tasks create no file), and
everything else to the original stream. Subprocesses write to the file directly.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

_local = threading.local()
_lock = threading.Lock()
_users = 0
_saved: tuple[Any, Any] | None = None


class _Router(io.TextIOBase):
    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def _target(self) -> Any:
        path: Path | None = getattr(_local, "path", None)
        if path is None:
            return self.fallback
        file = getattr(_local, "file", None)
        if file is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            file = _local.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        return file

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False


@contextmanager
def installed() -> Iterator[None]:
    """Route stdout/stderr per thread for the duration (nested runs share one router)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = (sys.stdout, sys.stderr)
            sys.stdout = _Router(sys.stdout)  # type: ignore[assignment]
            sys.stderr = _Router(sys.stderr)  # type: ignore[assignment]
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                if isinstance(sys.stdout, _Router):
                    sys.stdout = _saved[0]
                if isinstance(sys.stderr, _Router):
                    sys.stderr = _saved[1]
                _saved = None


@contextmanager
def to_file(path: Path | None) -> Iterator[None]:
    """This thread's output goes to ``path`` until the block ends."""
    _local.path, _local.file = path, None
    try:
        yield
    finally:
        file = getattr(_local, "file", None)
        if file is not None:
            file.close()
        _local.path, _local.file = None, None
